"""Game parameters (spec §1.3, §1.4): one frozen record per game setting.

Defaults are the paper's settings (the reference's "large" factory for
Gathering and the standard Cleanup map), so ``GameConfig.for_game(game)``
with no arguments is the configuration behind every published number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from synthloop.tasks.ssd.maps import DEFAULT_MAP, MAP_TEXTS

GAMES: tuple[str, ...] = ("gathering", "cleanup")


@dataclass(frozen=True)
class GameConfig:
    """Everything that defines a game instance except the rules variant."""

    game: str = "gathering"
    map_name: str = "large"
    n_agents: int = 10
    max_steps: int = 1000
    beam_length: int = 20
    beam_width: int = 1
    hits_to_tag: int = 2
    timeout_steps: int = 25
    # Gathering apples
    apple_respawn_time: int = 25
    # Cleanup economics and dynamics
    fire_cost: float = 0.0
    fire_penalty: float = 0.0
    clean_cost: float = 0.0
    threshold_depletion: float = 0.4
    threshold_restoration: float = 0.0
    waste_spawn_prob: float = 0.5
    apple_respawn_prob: float = 0.05
    # Egocentric observation window
    obs_ahead: int = 15
    obs_side: int = 10

    @property
    def is_cleanup(self) -> bool:
        return self.game == "cleanup"

    @property
    def n_actions(self) -> int:
        return 9 if self.is_cleanup else 8

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def for_game(
        cls,
        game: str,
        map_name: str | None = None,
        *,
        n_agents: int = 10,
        max_steps: int = 1000,
        **overrides: object,
    ) -> GameConfig:
        """Paper parameters for ``game``; raises ``KeyError`` on an unknown
        game or map with the valid choices in the message."""
        game = normalise_game(game)
        map_name = map_name or DEFAULT_MAP[game]
        if map_name not in MAP_TEXTS[game]:
            raise KeyError(f"unknown {game} map {map_name!r}; valid maps: {', '.join(MAP_TEXTS[game])}")
        if n_agents < 1:
            raise ValueError("n_agents must be >= 1")
        if game == "cleanup":
            base = dict(
                beam_length=5, beam_width=3, hits_to_tag=1, timeout_steps=25,
                fire_cost=1.0, fire_penalty=50.0, clean_cost=1.0, obs_ahead=7, obs_side=7,
            )
        else:
            base = {}
        base.update(overrides)  # type: ignore[arg-type]
        return cls(game=game, map_name=map_name, n_agents=n_agents, max_steps=max_steps, **base)  # type: ignore[arg-type]


def normalise_game(game: str) -> str:
    """Accept ``gathering``, ``ssd/gathering`` and case variants."""
    name = game.strip().lower()
    if name.startswith("ssd/"):
        name = name[4:]
    if name not in GAMES:
        raise KeyError(f"unknown game {game!r}; valid games: {', '.join(GAMES)}")
    return name
