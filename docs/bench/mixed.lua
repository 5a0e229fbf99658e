-- Mixed traffic for the soak: cold transforms of large photos (baseline and
-- progressive; box, format and algorithm cycle through ~70 000 combinations
-- so they keep missing the cache for the whole run), memory hits,
-- passthrough and 4xx.
local threads = 0
function setup(thread)
	thread:set("id", threads)
	threads = threads + 1
end
function init(args)
	n = (id or 0) * 1000003
end
local formats = { "webp", "jpeg", "avif" }
local algos = { "auto", "lanczos3", "thumbnail" }
local function cold(photo)
	local size = 100 + (n * 7919) % 3900
	return "/" .. photo .. "?size=" .. size .. "&format=" .. formats[n % 3 + 1]
		.. "&resize_algorithm=" .. algos[math.floor(n / 3) % 3 + 1]
end
function request()
	n = n + 1
	local k = n % 10
	local path
	if k == 0 then
		path = cold("progressive.jpg")
	elseif k <= 2 then
		path = cold("baseline.jpg")
	elseif k <= 6 then
		path = "/baseline.jpg?size=400&format=webp"
	elseif k == 7 then
		path = "/small.jpg"
	elseif k == 8 then
		path = "/missing-" .. n .. ".jpg"
	else
		path = "/small.jpg?size=0"
	end
	return wrk.format("GET", path)
end
