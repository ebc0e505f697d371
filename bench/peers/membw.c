// Streaming memory read bandwidth: each OpenMP thread sums its slice of a buffer far larger than the caches.
//   gcc -O3 -march=native -fopenmp -o membw membw.c
//   OMP_NUM_THREADS=2 ./membw [MiB=1024] [reps=10]
// Prints one JSON line: {"threads":2,"mib":1024,"best_gb_s":..,"median_gb_s":..} (GB = 1e9 bytes).
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], 0, 10) : 1024;
  int reps = argc > 2 ? atoi(argv[2]) : 10;
  if (reps < 1 || reps > 1000) reps = 10;
  size_t n = mib * 1024 * 1024 / sizeof(uint64_t);
  uint64_t *a = aligned_alloc(64, n * sizeof(uint64_t));
  if (!a) { fprintf(stderr, "membw: out of memory\n"); return 1; }
  // First touch from the threads that will read, so pages land where they are read.
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) a[i] = i * 2654435761u;

  double gbs[1000];
  uint64_t sink = 0;
  for (int r = 0; r < reps; r++) {
    uint64_t s = 0;
    double t = now();
#pragma omp parallel for simd schedule(static) reduction(+ : s)
    for (size_t i = 0; i < n; i++) s += a[i];
    t = now() - t;
    sink ^= s;
    gbs[r] = (double)(n * sizeof(uint64_t)) / t / 1e9;
  }
  double best = 0;
  for (int r = 0; r < reps; r++) if (gbs[r] > best) best = gbs[r];
  qsort(gbs, reps, sizeof(double), cmp);
  printf("{\"threads\": %d, \"mib\": %zu, \"best_gb_s\": %.2f, \"median_gb_s\": %.2f, \"check\": %u}\n",
         omp_get_max_threads(), mib, best, gbs[reps / 2], (unsigned)(sink & 1));
  free(a);
  return 0;
}
