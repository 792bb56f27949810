"""Gymnasium-style environment and lazy observations."""

from __future__ import annotations

import numpy as np
import pytest

from synthloop.tasks.ssd.env import SSDEnv
from synthloop.tasks.ssd.observations import COLOURS


def test_reset_and_step_return_parallel_dicts() -> None:
    env = SSDEnv("gathering", map_name="small", n_agents=2, max_steps=3)
    obs, infos = env.reset(seed=0)
    assert set(infos) == {0, 1} and infos[0] == {"timeout": 0, "beam_hits": 0}
    for _t in range(3):
        obs, rew, term, trunc, infos = env.step({0: 7, 1: 7})
        assert set(rew) == {0, 1} and not any(trunc.values())
    assert all(term.values()) and env.agents == []


def test_observations_are_lazy_egocentric_rgb() -> None:
    env = SSDEnv("gathering", n_agents=10)
    obs, _ = env.reset(seed=0)
    assert not hasattr(env.engine, "_obs_world")  # nothing built until indexed
    o = obs[3]
    assert o.shape == env.observation_shape == (3, 16, 21) and o.dtype == np.uint8
    assert tuple(o[:, 15, 10]) == COLOURS["self"]  # bottom centre is me
    obs, *_ = env.step([7] * 10)
    with pytest.raises(KeyError):
        obs[10]


def test_cleanup_observation_window_is_8_by_15() -> None:
    env = SSDEnv("cleanup", n_agents=10)
    obs, infos = env.reset(seed=1)
    assert obs[0].shape == (3, 8, 15) and "waste_density" in infos[0]


def test_stale_observation_mapping_refuses_after_step() -> None:
    env = SSDEnv("gathering", map_name="small", n_agents=2)
    obs, _ = env.reset(seed=0)
    env.step([7, 7])
    with pytest.raises(RuntimeError):
        obs[0]


def test_pettingzoo_adapter_when_installed() -> None:
    pytest.importorskip("pettingzoo")
    penv = SSDEnv("gathering", map_name="small", n_agents=2).as_pettingzoo()
    obs, infos = penv.reset(seed=0)
    assert set(obs) == {"agent_0", "agent_1"}


def test_pettingzoo_adapter_logic_with_stub_modules(monkeypatch) -> None:
    """Exercise the adapter without the real packages (stubs for the two imports)."""
    import sys
    import types

    pz = types.ModuleType("pettingzoo")
    pz.ParallelEnv = object  # type: ignore[attr-defined]
    gym = types.ModuleType("gymnasium")
    spaces = types.ModuleType("gymnasium.spaces")
    spaces.Box = lambda low, high, shape, dtype: ("box", shape)  # type: ignore[attr-defined]
    spaces.Discrete = lambda n: ("discrete", n)  # type: ignore[attr-defined]
    gym.spaces = spaces  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pettingzoo", pz)
    monkeypatch.setitem(sys.modules, "gymnasium", gym)
    monkeypatch.setitem(sys.modules, "gymnasium.spaces", spaces)
    penv = SSDEnv("cleanup", map_name="small", n_agents=3, max_steps=2).as_pettingzoo()
    obs, infos = penv.reset(seed=0)
    assert set(obs) == {"agent_0", "agent_1", "agent_2"} and penv.action_space("agent_0") == ("discrete", 9)
    obs, rew, term, trunc, infos = penv.step({"agent_0": 7, "agent_1": 7, "agent_2": 7})
    obs, rew, term, trunc, infos = penv.step({"agent_0": 7})
    assert all(term.values()) and penv.agents == [] and obs["agent_1"].shape == (3, 8, 15)
