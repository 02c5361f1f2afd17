-- wrk script for bench/admin.sh: every request carries the signed-in session cookie.
wrk.headers["Cookie"] = os.getenv("FISSION_COOKIE")
wrk.headers["Accept-Language"] = "zh-CN"

-- A page that is not a 200 (an expired session redirects) would measure the wrong thing.
local bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("non-200 responses: %d\n", bad))
end
