// SPDX-License-Identifier: MIT
/*
 * Peer benchmark: Boost.Fiber.
 *
 *   spawn_await  from a fiber, construct a boost::fibers::fiber running an
 *                empty function and join it, N times in a row; ns per pair.
 *   skynet       a fiber per node of the skynet tree (1,000,000 leaves), each
 *                parent joining its 10 children and summing; ms per tree.
 *   yield        two fibers on one thread (round_robin), each calling
 *                boost::this_fiber::yield() M times; ns = time / (2*M).
 *   mutex        8 fibers, each taking one boost::fibers::mutex 250,000
 *                times to add one to a shared counter; ns per lock+unlock =
 *                time / 2,000,000.
 *   queue        4 producer and 4 consumer fibers move 2,000,000 int64s
 *                through a buffered_channel<int64_t>(64); the consumers pop
 *                until it is closed and empty; ns per element.  Boost wants
 *                a power of 2 and keeps one slot free: 63 elements fit.
 *   pingpong     two fibers bounce a number through two
 *                buffered_channel<int64_t>(2) (one element each), 200,000
 *                times; ns per round trip.
 *
 * All but yield run under algo::work_stealing on every CPU: each
 * worker thread installs the algorithm, meets the others at a barrier, then
 * parks on a fiber condition variable (so its scheduler keeps running stolen
 * fibers) until the main thread says the work is done.  Fibers use the
 * default stack allocator.
 *
 * A wrong counter, sum or echo adds a line "<bench> error: ..." after the
 * figure.  Each line is the median of 7 timed runs after one warm-up run.
 * BENCH_SCALE=K divides N, M and the counts above (not the skynet size) for
 * a quick run.
 */
#include <boost/fiber/all.hpp>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bf = boost::fibers;
using steady = std::chrono::steady_clock;

static double ns_since(steady::time_point t0)
{
    return std::chrono::duration<double, std::nano>(steady::now() - t0).count();
}

static long scaled(long n)
{
    const char *s = std::getenv("BENCH_SCALE");
    long k = s ? std::strtol(s, nullptr, 10) : 1;
    if (k < 1)
        k = 1;
    return n / k > 0 ? n / k : 1;
}

/* One warm-up run, then the median of 7 timed runs. */
template <class F> static double median_of(F run)
{
    std::vector<double> v;
    run();
    for (int i = 0; i < 7; i++)
        v.push_back(run());
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

static double spawn_await(long n)
{
    auto t0 = steady::now();
    for (long i = 0; i < n; i++) {
        bf::fiber f([] {});
        f.join();
    }
    return ns_since(t0) / double(n);
}

static std::int64_t skynet(std::int64_t num, std::int64_t size)
{
    if (size == 1)
        return num;
    std::int64_t sub = size / 10, part[10], sum = 0;
    bf::fiber kids[10];
    for (int i = 0; i < 10; i++)
        kids[i] = bf::fiber([&part, i, num, sub] { part[i] = skynet(num + i * sub, sub); });
    for (int i = 0; i < 10; i++) {
        kids[i].join();
        sum += part[i];
    }
    return sum;
}

static double skynet_ms()
{
    auto t0 = steady::now();
    std::int64_t sum = skynet(0, 1000000);
    double ms = ns_since(t0) / 1e6;
    if (sum != 499999500000) {
        std::printf("skynet error: sum %lld, expected 499999500000\n", (long long)sum);
        std::exit(1);
    }
    return ms;
}

static double yield_ns(long m)
{
    double ns = 0;
    /* A fresh thread gets the default round_robin scheduler. */
    std::thread t([&] {
        auto body = [m] {
            for (long i = 0; i < m; i++)
                boost::this_fiber::yield();
        };
        auto t0 = steady::now();
        bf::fiber a(body), b(body);
        a.join();
        b.join();
        ns = ns_since(t0) / (2.0 * double(m));
    });
    t.join();
    return ns;
}

/* The first wrong result of the benchmark being run, if any. */
static std::string wrong;

template <class F> static void report(const char *bench, F run)
{
    wrong.clear();
    std::printf("%s %.1f ns\n", bench, median_of(run));
    if (!wrong.empty())
        std::printf("%s error: %s\n", bench, wrong.c_str());
    std::fflush(stdout);
}

/* n rounded down to a multiple of k, and at least k: one item per fiber. */
static long multiple(long n, long k)
{
    return n < k ? k : n / k * k;
}

static void note_wrong(std::string what)
{
    if (wrong.empty())
        wrong = std::move(what);
}

constexpr int mutex_fibers = 8;

static double mutex_ns(long total)
{
    bf::mutex m;
    long counter = 0, per = total / mutex_fibers;
    std::vector<bf::fiber> fs;
    auto t0 = steady::now();
    for (int i = 0; i < mutex_fibers; i++)
        fs.emplace_back([&] {
            for (long j = 0; j < per; j++) {
                m.lock();
                counter++;
                m.unlock();
            }
        });
    for (auto &f : fs)
        f.join();
    double ns = ns_since(t0) / double(per * mutex_fibers);
    if (counter != per * mutex_fibers)
        note_wrong("counter " + std::to_string(counter) + ", expected " +
                   std::to_string(per * mutex_fibers));
    return ns;
}

constexpr int queue_producers = 4, queue_consumers = 4;

static double queue_ns(long total)
{
    bf::buffered_channel<std::int64_t> ch(64);
    std::int64_t per = total / queue_producers, n = per * queue_producers;
    std::atomic<std::int64_t> sum{0};
    std::vector<bf::fiber> producers, consumers;
    auto t0 = steady::now();
    for (int i = 0; i < queue_consumers; i++)
        consumers.emplace_back([&] {
            std::int64_t v, s = 0;
            while (ch.pop(v) == bf::channel_op_status::success)
                s += v;
            sum += s;
        });
    for (int i = 0; i < queue_producers; i++)
        producers.emplace_back([&ch, per, i] {
            for (std::int64_t v = i * per; v < (i + 1) * per; v++)
                ch.push(v);
        });
    for (auto &f : producers)
        f.join();
    ch.close();
    for (auto &f : consumers)
        f.join();
    double ns = ns_since(t0) / double(n);
    if (sum != n * (n - 1) / 2)
        note_wrong("sum " + std::to_string(sum) + ", expected " + std::to_string(n * (n - 1) / 2));
    return ns;
}

static double pingpong_ns(long n)
{
    /* Capacity 2: one element, like the others' one-slot queues. */
    bf::buffered_channel<std::int64_t> ping(2), pong(2);
    long bad = 0;
    auto t0 = steady::now();
    bf::fiber ponger([&] {
        std::int64_t v;
        while (ping.pop(v) == bf::channel_op_status::success)
            pong.push(v);
    });
    for (std::int64_t i = 0; i < n; i++) {
        std::int64_t back = -1;
        ping.push(i);
        pong.pop(back);
        bad += back != i;
    }
    ping.close();
    ponger.join();
    double ns = ns_since(t0) / double(n);
    if (bad)
        note_wrong(std::to_string(bad) + " of " + std::to_string(n) + " numbers came back changed");
    return ns;
}

int main()
{
    unsigned threads = std::max(1u, std::thread::hardware_concurrency());
    long n = scaled(200000), m = scaled(1000000);

    /* Work-stealing pool: this thread plus threads-1 workers. */
    std::barrier<> ready(threads);
    std::mutex mtx;
    bf::condition_variable_any cv;
    bool done = false;
    std::vector<std::thread> workers;
    for (unsigned i = 1; i < threads; i++)
        workers.emplace_back([&] {
            bf::use_scheduling_algorithm<bf::algo::work_stealing>(threads);
            ready.arrive_and_wait();
            std::unique_lock<std::mutex> lk(mtx);
            cv.wait(lk, [&] { return done; });
        });
    /* work_stealing's constructor waits until every thread has made one. */
    bf::use_scheduling_algorithm<bf::algo::work_stealing>(threads);
    ready.arrive_and_wait();

    std::printf("spawn_await %.1f ns\n", median_of([n] { return spawn_await(n); }));
    std::fflush(stdout);
    std::printf("skynet %.1f ms\n", median_of(skynet_ms));
    std::fflush(stdout);
    long mutex_total = multiple(scaled(2000000), mutex_fibers);
    report("mutex", [mutex_total] { return mutex_ns(mutex_total); });
    long queue_total = multiple(scaled(2000000), queue_producers);
    report("queue", [queue_total] { return queue_ns(queue_total); });
    long trips = scaled(200000);
    report("pingpong", [trips] { return pingpong_ns(trips); });

    {
        std::lock_guard<std::mutex> lk(mtx);
        done = true;
    }
    cv.notify_all();
    for (auto &w : workers)
        w.join();

    std::printf("yield %.1f ns\n", median_of([m] { return yield_ns(m); }));
    return 0;
}
