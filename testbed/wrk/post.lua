wrk.method = "POST"
wrk.body   = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_gpu_health","arguments":{}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
done = function(summary, latency, requests)
  io.write(string.format("non200=%d\n", summary.errors.status))
end
