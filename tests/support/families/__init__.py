"""The family case corpus (see common.py): every family module's cases, in one list."""

from __future__ import annotations

from . import deepseek, forced, gemma, glm, gpt_oss, granite, kimi, llama, mistral, qwen
from .common import TOOLS, Case

FAMILY_MODULES = (qwen, llama, mistral, gemma, gpt_oss, glm, granite, kimi, deepseek, forced)


def all_cases() -> list[Case]:
    return [case for module in FAMILY_MODULES for case in module.cases()]


__all__ = ["FAMILY_MODULES", "TOOLS", "Case", "all_cases"]
