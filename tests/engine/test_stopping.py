"""How a stop request is taken, in process, with real signals sent to this process: noted
between steps, raised at once before the first step, a second Ctrl-C is "now", and the
handlers before it are given back."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from engine.process.stopping import STOP_SIGNALS, Interrupted, StopRequest, ignore_stop_signals


def _as_on_a_terminal() -> None:
    """SIGHUP as a terminal's session has it: a suite run under nohup (a CI's detached job) ignores it,
    and an ignored hangup stays ignored (the test of that is below)."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.fixture
def stop() -> Iterator[StopRequest]:
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    _as_on_a_terminal()
    request = StopRequest().install()
    yield request
    request.restore()
    for sig, handler in before.items():  # whatever the test did, pytest's own handlers come back
        signal.signal(sig, handler)  # type: ignore[arg-type]


@pytest.mark.parametrize("sig", STOP_SIGNALS)
def test_a_stop_signal_is_noted_for_the_next_step_boundary(stop: StopRequest, sig: int) -> None:
    assert not stop.requested and stop.name == ""
    os.kill(os.getpid(), sig)  # delivered before kill returns: the handler ran, nothing was raised
    assert stop.requested and stop.name == signal.Signals(sig).name


def test_before_the_first_step_a_stop_raises_at_once(stop: StopRequest) -> None:
    with pytest.raises(Interrupted) as raised, stop.immediately():
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("not reached: the signal raised")
    assert raised.value.signame == "SIGTERM" and isinstance(raised.value, KeyboardInterrupt)
    # after the block a signal is only noted again; entering it with one pending raises
    os.kill(os.getpid(), signal.SIGUSR1)
    assert stop.name == "SIGUSR1"
    with pytest.raises(Interrupted, match="SIGUSR1"), stop.immediately():
        raise AssertionError("not reached: a pending stop raises on entry")


def test_a_second_ctrl_c_means_now(stop: StopRequest) -> None:
    os.kill(os.getpid(), signal.SIGINT)
    assert stop.name == "SIGINT"
    with pytest.raises(KeyboardInterrupt) as raised:
        os.kill(os.getpid(), signal.SIGINT)
    assert not isinstance(raised.value, Interrupted)
    os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM is only noted again
    assert stop.name == "SIGTERM"


def test_install_twice_then_restore_gives_the_earlier_handlers_back() -> None:
    hangup = signal.getsignal(signal.SIGHUP)
    _as_on_a_terminal()
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    request = StopRequest().install()
    try:
        handlers = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
        assert all(h != before[sig] for sig, h in handlers.items())
        assert request.install() is request  # train installs it before indexing, then again
        assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == handlers
    finally:
        request.restore()
    assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == before
    signal.signal(signal.SIGHUP, hangup)  # type: ignore[arg-type]


def test_a_loader_worker_ignores_the_stop_signals_of_its_group() -> None:
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        ignore_stop_signals(3)
        assert all(signal.getsignal(sig) == signal.SIG_IGN for sig in STOP_SIGNALS)
        for sig in STOP_SIGNALS:
            os.kill(os.getpid(), sig)  # ignored: this process goes on
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def test_a_hangup_stops_the_run_unless_nohup_ignores_it() -> None:
    """An SSH session that dropped sent SIGHUP: the run died at once (exit 129), its epoch lost and its
    row running until the liveness check called it lost. Under nohup it is ignored, and stays so."""
    before = signal.getsignal(signal.SIGHUP)
    try:
        _as_on_a_terminal()
        request = StopRequest().install()
        os.kill(os.getpid(), signal.SIGHUP)
        assert request.requested and request.name == "SIGHUP"
        request.restore()
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup starts it
        request = StopRequest().install()
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGHUP)  # ignored: this process goes on, no stop asked
        assert not request.requested
        request.restore()
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)  # type: ignore[arg-type]
