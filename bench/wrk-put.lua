-- wrk: PUT the manifest in $BENCH_MANIFEST to a new tag per request under $BENCH_PUT_PATH
-- (v<random>: a first push of a tag that "v*" protects), then report like wrk-report.lua.
local file = assert(io.open(os.getenv("BENCH_MANIFEST"), "rb"))
local manifest = file:read("*a")
file:close()
local prefix = os.getenv("BENCH_PUT_PATH")
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
-- wrk.format takes the headers given in place of wrk.headers (-H): copy them in.
local headers = {}
init = function(args)
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Content-Type"] = "application/vnd.oci.image.manifest.v1+json"
end
request = function()
  return wrk.format("PUT", prefix .. "v" .. math.random(1, 2000000000), headers, manifest)
end
dofile(os.getenv("BENCH_WRK_REPORT"))
