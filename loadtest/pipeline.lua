-- wrk -s loadtest/pipeline.lua: 16 pipelined GETs of the same path per write.
local depth = 16
init = function(args)
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format(nil)
  end
  req = table.concat(r)
end

request = function()
  return req
end
