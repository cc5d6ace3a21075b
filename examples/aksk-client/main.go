// Command aksk-client lists the networks an API key may read, signing each
// request with the key. Run it as
//
//	CHAINDOCK_SERVER=http://127.0.0.1:7400 CHAINDOCK_AK=AK... CHAINDOCK_SK=... go run ./examples/aksk-client
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/chaindock/chaindock/pkg/aksk"
)

func main() {
	c := &http.Client{Transport: &aksk.Transport{AccessKey: os.Getenv("CHAINDOCK_AK"), Secret: os.Getenv("CHAINDOCK_SK")}}
	resp, err := c.Get(os.Getenv("CHAINDOCK_SERVER") + "/api/v1/networks")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)
	_, _ = io.Copy(os.Stdout, resp.Body)
}
