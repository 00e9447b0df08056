"""A virtual Nuki Smart Lock: the lock's protocol as a pure state machine
(:mod:`ble.sim.lock`) inside a Bumble GATT peripheral (:mod:`ble.sim.peripheral`), for
tests, the benchmark, the demo and ``threshold lock ... --sim``."""
