-- Cold transforms: every request asks for a different size (300-499 px), so
-- identical concurrent requests never coalesce into one render. Threads
-- start at different offsets. Usage: wrk -s cold.lua 'http://host/photo.jpg?format=webp'
local threads = 0
function setup(thread)
	thread:set("id", threads)
	threads = threads + 1
end
function init(args)
	n = (id or 0) * 97
end
function request()
	n = n + 1
	return wrk.format("GET", wrk.path .. "&size=" .. (300 + n % 200))
end
