// SPDX-License-Identifier: MIT

// The Go peer of weft-http: net/http, as its users write a server, with
// the same two endpoints.  GOMAXPROCS defaults to every CPU.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"runtime"
)

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.String("port", "8080", "port")
	threads := flag.Int("threads", 0, "GOMAXPROCS (0: every CPU)")
	flag.Parse()
	if *threads > 0 {
		runtime.GOMAXPROCS(*threads)
	}
	hello := []byte("Hello, World!")
	mux := http.NewServeMux()
	mux.HandleFunc("/plaintext", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/plain"}
		h["Server"] = []string{"go"}
		w.Write(hello)
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Server"] = []string{"go"}
		w.Write([]byte(`{"message":"Hello, World!"}`))
	})
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, *port))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on %s", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
