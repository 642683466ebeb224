// SPDX-License-Identifier: MIT
// Peer benchmark: Go goroutines.
//
//	spawn_await  `go f()` where f only signals a channel, then receive from
//	             it, N times in a row; ns per spawn+receive.
//	skynet       a goroutine per node of the skynet tree (1,000,000 leaves);
//	             children send their sums to the parent over a channel;
//	             ms per tree.
//	yield        runtime.GOMAXPROCS(1), two goroutines each calling
//	             runtime.Gosched() M times; ns = time / (2*M).
//	mutex        8 goroutines, each taking one sync.Mutex 250,000 times to
//	             add one to a shared counter; ns per Lock+Unlock =
//	             time / 2,000,000.
//	queue        4 producer and 4 consumer goroutines move 2,000,000 int64s
//	             through make(chan int64, 64); the consumers range over it
//	             until it is closed; ns per element.
//	pingpong     two goroutines bounce a number through two
//	             make(chan int64, 1), 200,000 times; ns per round trip.
//
// Everything but yield uses the default GOMAXPROCS (every CPU).  A wrong
// counter, sum or echo adds a line "<bench> error: ..." after the figure.
// Each line is the median of 7 timed runs after one warm-up run.
// BENCH_SCALE=K divides N, M and the counts above (not the skynet size)
// for a quick run.
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

// wrong holds the first wrong result of the benchmark being run, if any.
var wrong string

func report(bench string, run func() float64) {
	wrong = ""
	fmt.Printf("%s %.1f ns\n", bench, medianOf(run))
	if wrong != "" {
		fmt.Printf("%s error: %s\n", bench, wrong)
	}
}

// multiple rounds n down to a multiple of k, and up to at least k.
func multiple(n, k int) int {
	if n < k {
		return k
	}
	return n / k * k
}

const mutexGoroutines = 8

func mutexNs(total int) float64 {
	var mu sync.Mutex
	var wg sync.WaitGroup
	counter, per := 0, total/mutexGoroutines
	t0 := time.Now()
	wg.Add(mutexGoroutines)
	for g := 0; g < mutexGoroutines; g++ {
		go func() {
			for i := 0; i < per; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	ns := float64(time.Since(t0).Nanoseconds()) / float64(per*mutexGoroutines)
	if counter != per*mutexGoroutines && wrong == "" {
		wrong = fmt.Sprintf("counter %d, expected %d", counter, per*mutexGoroutines)
	}
	return ns
}

const queueProducers, queueConsumers = 4, 4

func queueNs(total int) float64 {
	ch := make(chan int64, 64)
	var producers, consumers sync.WaitGroup
	var mu sync.Mutex
	per := int64(total / queueProducers)
	n, sum := per*queueProducers, int64(0)
	t0 := time.Now()
	consumers.Add(queueConsumers)
	for c := 0; c < queueConsumers; c++ {
		go func() {
			var s int64
			for v := range ch {
				s += v
			}
			mu.Lock()
			sum += s
			mu.Unlock()
			consumers.Done()
		}()
	}
	producers.Add(queueProducers)
	for p := int64(0); p < queueProducers; p++ {
		go func(first int64) {
			for v := first; v < first+per; v++ {
				ch <- v
			}
			producers.Done()
		}(p * per)
	}
	producers.Wait()
	close(ch)
	consumers.Wait()
	ns := float64(time.Since(t0).Nanoseconds()) / float64(n)
	if sum != n*(n-1)/2 && wrong == "" {
		wrong = fmt.Sprintf("sum %d, expected %d", sum, n*(n-1)/2)
	}
	return ns
}

func pingpongNs(n int) float64 {
	ping, pong := make(chan int64, 1), make(chan int64, 1)
	done := make(chan struct{})
	bad := 0
	t0 := time.Now()
	go func() {
		for v := range ping {
			pong <- v
		}
		close(done)
	}()
	for i := int64(0); i < int64(n); i++ {
		ping <- i
		if <-pong != i {
			bad++
		}
	}
	close(ping)
	<-done
	ns := float64(time.Since(t0).Nanoseconds()) / float64(n)
	if bad != 0 && wrong == "" {
		wrong = fmt.Sprintf("%d of %d numbers came back changed", bad, n)
	}
	return ns
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "pingpong" {
		// Only the ping-pong, as it is run a second time with GOMAXPROCS=1.
		report("pingpong", func() float64 { return pingpongNs(scaled(200000)) })
		return
	}
	n, m := scaled(200000), scaled(1000000)
	fmt.Printf("spawn_await %.1f ns\n", medianOf(func() float64 { return spawnAwait(n) }))
	fmt.Printf("skynet %.1f ms\n", medianOf(skynetMs))
	fmt.Printf("yield %.1f ns\n", medianOf(func() float64 { return yieldNs(m) }))
	mutexTotal := multiple(scaled(2000000), mutexGoroutines)
	report("mutex", func() float64 { return mutexNs(mutexTotal) })
	queueTotal := multiple(scaled(2000000), queueProducers)
	report("queue", func() float64 { return queueNs(queueTotal) })
	trips := scaled(200000)
	report("pingpong", func() float64 { return pingpongNs(trips) })
}
