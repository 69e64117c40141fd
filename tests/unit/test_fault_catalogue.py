"""The fault campaign's list follows its broker: the broker's own faults, and every other fault."""

import pytest

from bench.faults.__main__ import chosen_faults, parse
from bench.faults.catalogue import BROKERS, FAULTS


def test_each_broker_gets_its_own_faults_and_all_the_others():
    common = [f.name for f in FAULTS if f.broker is None]
    for broker in BROKERS:
        names = [f.name for f in chosen_faults(None, broker)]
        assert [n for n in names if n in common] == common
        assert all(f.broker in (None, broker) for f in chosen_faults(None, broker))
    assert {f.name for f in chosen_faults(None, "rabbitmq") if f.broker} == {"rabbitmq restart",
                                                                            "rabbitmq kill -9"}
    assert parse([]).broker == "redis"


def test_another_brokers_fault_is_refused_by_name():
    with pytest.raises(SystemExit, match="redis kill -9"):
        chosen_faults("worker kill -9,redis kill -9", "rabbitmq")
    assert [f.name for f in chosen_faults("rabbitmq kill -9", "rabbitmq")] == ["rabbitmq kill -9"]
