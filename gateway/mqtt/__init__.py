"""Home Assistant over MQTT: discovery, states, visit events and (opt-in) commands.

* :mod:`gateway.mqtt.topics`: **pure**, every topic name, derived from the prefix and the
  gateway's id (one place, so discovery and publishing never disagree);
* :mod:`gateway.mqtt.discovery`: **pure**, the device-based discovery document Home
  Assistant reads (``<discovery prefix>/device/<id>/config``);
* :mod:`gateway.mqtt.states`: **pure**, what a lock reading, an access event or a command
  becomes on the wire;
* :mod:`gateway.mqtt.bridge`: the async shell: an :class:`~gateway.access.observer.
  AccessObserver` that never blocks the access path, one aiomqtt connection kept up with
  backoff, the last will, re-announcement, commands.
"""
