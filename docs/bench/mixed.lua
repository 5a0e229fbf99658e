-- Mixed traffic for the soak: cold transforms of large photos (baseline and
-- progressive, changing sizes so most miss), memory hits, passthrough and 4xx.
local n = 0
request = function()
	n = n + 1
	local k = n % 10
	local path
	if k == 0 then
		path = "/progressive.jpg?format=webp&size=" .. (300 + n % 700)
	elseif k == 1 or k == 2 then
		path = "/baseline.jpg?format=webp&size=" .. (300 + n % 900)
	elseif k == 3 then
		path = "/baseline.jpg?format=avif&size=" .. (200 + n % 300)
	elseif k == 4 or k == 5 or k == 6 then
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
