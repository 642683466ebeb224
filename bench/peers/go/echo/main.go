// SPDX-License-Identifier: MIT
// Peer echo server: a goroutine per connection, as Go programs are written.
//
//	echo_go [--host H] [--port N] [--threads N]
//
// --threads N sets GOMAXPROCS when N > 0; by default Go runs goroutines on
// every CPU.  Each connection's goroutine reads into its own 16 KiB buffer
// and writes back what it read, until the peer closes.  The runtime's
// netpoller parks a goroutine whose socket has nothing to read; Go sets
// TCP_NODELAY on every TCP connection by default.  SIGINT and SIGTERM end
// the process.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"time"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 16384)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 7000, "port")
	threads := flag.Int("threads", 0, "GOMAXPROCS (0: Go's default, every CPU)")
	flag.Parse()
	if *threads > 0 {
		runtime.GOMAXPROCS(*threads)
	}
	addr := net.JoinHostPort(*host, fmt.Sprint(*port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo_go:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "echo_go: listening on %s, GOMAXPROCS %d\n", addr, runtime.GOMAXPROCS(0))
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "echo_go: accept:", err)
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors
			continue
		}
		go serve(c)
	}
}
