// The official Go SDK serving get_gpu_health with a fixed result (structuredContent and text read
// from the files named on the command line), for testbed/wrk/side-by-side.sh.
package main

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"os"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {
	structured, err := os.ReadFile(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	text, err := os.ReadFile(os.Args[3])
	if err != nil {
		log.Fatal(err)
	}
	server := mcp.NewServer(&mcp.Implementation{Name: "go-peer", Version: "1"}, nil)
	server.AddTool(&mcp.Tool{
		Name:        "get_gpu_health",
		Description: "health",
		InputSchema: json.RawMessage(`{"type":"object"}`),
	}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{
			Content:           []mcp.Content{&mcp.TextContent{Text: string(text)}},
			StructuredContent: json.RawMessage(structured),
		}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	log.Fatal(http.ListenAndServe(os.Args[1], h))
}
