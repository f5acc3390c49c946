"""The config form offers the filterbank backbones' templates and saves them unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.conftest import make, open_configs, wait_for


@pytest.mark.slow
@pytest.mark.parametrize("name,param,mel_bins", [("resnet34", "m_channels", 80), ("ecapa_tdnn", "global_context", 80),
                                                 ("campplus", "growth_rate", 40)])  # CAM++ CPU-sized: 40 bins
async def test_config_form_loads_and_saves_a_backbone_template(workspace: Path, name: str, param: str,
                                                               mel_bins: int) -> None:
    from engine.config import load_config, parse_config, template_text

    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_configs(pilot)
        screen.query_one("#source").value = f"template:{name}"
        await wait_for(pilot, lambda: f"architecture.params.{param}" in screen.keys)
        await wait_for(pilot, lambda: screen.field("feature_extraction.name").value == "Fbank")
        assert screen.field("feature_extraction.params.num_mel_bins").value == str(mel_bins)
        assert "architecture.params.sincnet.stride" not in screen.keys
        await pilot.pause(0.2)
        saved = screen.action_save()
    assert saved == workspace / "experiments" / name
    assert load_config(saved / "config.yml") == parse_config(template_text(name))
