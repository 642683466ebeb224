/*
 * Peer benchmark: Boost.Fiber.
 *
 *   spawn_await  from a fiber, construct a boost::fibers::fiber running an
 *                empty function and join it, N times in a row; ns per pair.
 *   skynet       a fiber per node of the skynet tree (1,000,000 leaves), each
 *                parent joining its 10 children and summing; ms per tree.
 *   yield        two fibers on one thread (round_robin), each calling
 *                boost::this_fiber::yield() M times; ns = time / (2*M).
 *
 * spawn_await and skynet run under algo::work_stealing on every CPU: each
 * worker thread installs the algorithm, meets the others at a barrier, then
 * parks on a fiber condition variable (so its scheduler keeps running stolen
 * fibers) until the main thread says the work is done.  Fibers use the
 * default stack allocator.
 *
 * Each line is the median of 7 timed runs after one warm-up run.
 * BENCH_SCALE=K divides N and M (not the skynet size) for a quick run.
 */
#include <boost/fiber/all.hpp>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
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
