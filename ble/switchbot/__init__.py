"""The SwitchBot Lock: its protocol (pure), its driver over :mod:`ble.link`, its vendor entry."""
