/* One MPI_Allreduce(SUM) of recur's w3 gradient exchange, timed alone: a buffer of
 * 7,184,454 floats (28.7 MB: the w3 model's 7,184,451 gradients, the loss and two stop
 * votes) summed into a second buffer, as recur's per-step exchange does. Rank 0 prints the best and the mean of the timed
 * reductions. Used to choose Open MPI's shared-memory options (README, "Training on several
 * machines").
 *
 *   mpicc -O2 -o /tmp/allreduce_speed bench/allreduce_speed.c
 *   mpirun --allow-run-as-root -np 2 /tmp/allreduce_speed [FLOATS] [RUNS]
 *   mpirun --allow-run-as-root -np 2 --mca btl_vader_single_copy_mechanism none /tmp/allreduce_speed
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    long n = argc > 1 ? atol(argv[1]) : 7184454;
    int runs = argc > 2 ? atoi(argv[2]) : 25;
    float *send = malloc(n * sizeof(float));
    float *recv = malloc(n * sizeof(float));
    if (n <= 0 || runs <= 0 || !send || !recv) {
        fprintf(stderr, "usage: allreduce_speed [FLOATS > 0] [RUNS > 0] (or out of memory)\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    for (long i = 0; i < n; i++) send[i] = (float)(i % 1000) * 1e-3f;

    /* Two untimed reductions: the first pays for connection setup and page faults. */
    double best = 1e30, total = 0.0;
    for (int r = -2; r < runs; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Allreduce(send, recv, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        double dt = MPI_Wtime() - t0;
        /* The slowest rank's time is the reduction's time. */
        MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (r >= 0) {
            total += dt;
            if (dt < best) best = dt;
        }
    }
    if (rank == 0)
        printf("allreduce of %ld floats (%.1f MB): best %.2f ms, mean %.2f ms over %d runs\n", n,
               n * 4.0 / 1e6, best * 1e3, total / runs * 1e3, runs);
    free(send);
    free(recv);
    MPI_Finalize();
    return 0;
}
