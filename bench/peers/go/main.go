// Peer benchmark: Go goroutines.
//
//	spawn_await  `go f()` where f only signals a channel, then receive from
//	             it, N times in a row; ns per spawn+receive.
//	skynet       a goroutine per node of the skynet tree (1,000,000 leaves);
//	             children send their sums to the parent over a channel;
//	             ms per tree.
//	yield        runtime.GOMAXPROCS(1), two goroutines each calling
//	             runtime.Gosched() M times; ns = time / (2*M).
//
// spawn_await and skynet use the default GOMAXPROCS (every CPU).
// Each line is the median of 7 timed runs after one warm-up run.
// BENCH_SCALE=K divides N and M (not the skynet size) for a quick run.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"
)

func scaled(n int) int {
	k, err := strconv.Atoi(os.Getenv("BENCH_SCALE"))
	if err != nil || k < 1 {
		k = 1
	}
	if n/k < 1 {
		return 1
	}
	return n / k
}

// medianOf does one warm-up run, then returns the median of 7 timed runs.
func medianOf(run func() float64) float64 {
	run()
	v := make([]float64, 7)
	for i := range v {
		v[i] = run()
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

func spawnAwait(n int) float64 {
	done := make(chan struct{})
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() { done <- struct{}{} }()
		<-done
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(n)
}

func skynet(out chan<- int64, num, size int64) {
	if size == 1 {
		out <- num
		return
	}
	sub := size / 10
	kids := make(chan int64, 10)
	for i := int64(0); i < 10; i++ {
		go skynet(kids, num+i*sub, sub)
	}
	var sum int64
	for i := 0; i < 10; i++ {
		sum += <-kids
	}
	out <- sum
}

func skynetMs() float64 {
	out := make(chan int64, 1)
	t0 := time.Now()
	go skynet(out, 0, 1000000)
	sum := <-out
	ms := float64(time.Since(t0).Nanoseconds()) / 1e6
	if sum != 499999500000 {
		fmt.Printf("skynet error: sum %d, expected 499999500000\n", sum)
		os.Exit(1)
	}
	return ms
}

func yieldNs(m int) float64 {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	var wg sync.WaitGroup
	wg.Add(2)
	body := func() {
		for i := 0; i < m; i++ {
			runtime.Gosched()
		}
		wg.Done()
	}
	t0 := time.Now()
	go body()
	go body()
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / (2 * float64(m))
}

func main() {
	n, m := scaled(200000), scaled(1000000)
	fmt.Printf("spawn_await %.1f ns\n", medianOf(func() float64 { return spawnAwait(n) }))
	fmt.Printf("skynet %.1f ms\n", medianOf(skynetMs))
	fmt.Printf("yield %.1f ns\n", medianOf(func() float64 { return yieldNs(m) }))
}
