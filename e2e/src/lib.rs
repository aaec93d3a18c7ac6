//! End-to-end tests live in `tests/`: each file starts real components through
//! `payments-testkit` (a Temporal dev server, the PSP simulator, a worker and a gateway) and
//! asserts on API answers, database rows and the simulator's captures.
