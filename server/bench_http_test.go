package server_test

import (
	"io"
	"net/http"
	"testing"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// BenchmarkLookupCachedHTTP is BenchmarkLookupCached over HTTP/JSON, as a
// PHP or shell client calls it: GET /v1/groups/{group}/members/{id} from
// 16 callers on keep-alive connections, each answer read whole and its
// status checked. Compare it with BenchmarkLookupCached (issue 15's
// target: HTTP/JSON at least 0.5x gRPC's throughput).
func BenchmarkLookupCachedHTTP(b *testing.B) {
	group := benchMembers(b, pb.NewRegistryServiceClient(testenv.Conn(b)), 10)
	url := testenv.HTTP(b) + "/v1/groups/" + group + "/members/m3"
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	b.SetParallelism(8) // 16 callers on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb_ *testing.PB) {
		for pb_.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Errorf("GET %s: %v, %v", url, resp.Status, err)
				return
			}
		}
	})
}
