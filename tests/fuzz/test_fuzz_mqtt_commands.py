"""Fuzzing what the gateway reads from the MQTT broker (:mod:`gateway.mqtt`): a command
topic and its payload, which anyone allowed to publish on the broker can send. Neither
reader ever raises: an unknown topic or payload is ignored (None), never guessed.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.mqtt.states import Command, parse_command
from gateway.mqtt.topics import Topics
from tests.fuzz.fuzzing import ANY_TEXT, FUZZ

TOPICS = Topics.of("threshold", "homeassistant", "gw-home")
COMMAND_TOPIC = "threshold/gw-home/door/front/lock/set"


@FUZZ
@given(
    st.binary(max_size=40)
    | st.sampled_from([b"LOCK", b"UNLOCK", b" UNLOCK\n", b"OPEN", b"unlock", b"UNLOCK\xff"])
)
def test_command_payloads_are_a_command_or_ignored(payload: bytes) -> None:
    command = parse_command(payload)
    assert command is None or command in set(Command)


@FUZZ
@given(
    ANY_TEXT
    | st.builds(lambda door: f"threshold/gw-home/door/{door}/lock/set", ANY_TEXT)
    | st.just(COMMAND_TOPIC)
)
def test_command_topics_name_one_door_or_none(topic: str) -> None:
    door = TOPICS.door_of_command(topic)
    assert door is None or (
        door and "/" not in door and topic == f"{TOPICS.base}/door/{door}/lock/set"
    )
