"""The Nuki Smart Lock: its BLE protocol (pure, :mod:`ble.nuki.protocol`) and a
:class:`ble.driver.LockDriver` over bleak (:mod:`ble.nuki.driver`)."""
