"""The audit log as the staff console shows it: each event one line in the staff's words.

English is ``failover.incident.describe`` (what ``portalguard events`` prints); Japanese is written
here for the kinds staff act on, and falls back to the English line for the rest — a line is never a
raw dict. Nothing personal of patients is in an event (a booking request's event names its number).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from failover.incident import describe
from failover.staff.messages import cause_in_words
from failover.store import Event

Words = Callable[[Event, Callable[[float], str]], str]

VERDICT_JA = {"up": "正常", "degraded": "不安定", "down": "停止中", "recovering": "回復確認中", "unknown": "判定不能"}
PERIODS = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}


def line(e: Event, lang: str, when: Callable[[float], str]) -> str:
    if lang != "ja":
        return describe(e, when)
    words = _JAPANESE.get(e.kind)
    return words(e, when) if words is not None else describe(e, when)


def _verdict(e: Event, when: Callable[[float], str]) -> str:
    d = e.detail
    before, after = VERDICT_JA.get(str(d.get("from")), d.get("from")), VERDICT_JA.get(str(d.get("to")), d.get("to"))
    return f"判定：{before} → {after}" + (f"（{d['reason']}）" if d.get("reason") else "")


def _failover(e: Event, when: Callable[[float], str]) -> str:
    d = e.detail
    cause = cause_in_words(str(d.get("cause") or ""), "ja")
    state = "代替受付を開始" if d.get("to") == "on" else "代替受付を終了"
    return f"{state}（No.{d.get('incident', '?')}、{cause}）"


def _action(e: Event, when: Callable[[float], str]) -> str:
    d = e.detail
    op = {"apply": "開始", "revert": "停止", "observe": "確認", "maintain": "維持"}.get(str(d.get("op")), d.get("op"))
    result = "成功" if d.get("ok") else f"失敗：{d.get('error')}"
    return f"対策 {e.action} の{op}：{result}（{d.get('attempt')}回目）"


def _override(e: Event, when: Callable[[float], str]) -> str:
    d = e.detail
    by = f"、{d['by']}" if d.get("by") else ""
    if d.get("mode") == "auto":
        return f"手動の切り替えを解除（自動に戻す{by}）"
    what = "手動で代替受付を開始" if d.get("mode") == "on" else "手動で切り替えを停止（誤報）"
    until = f"{when(float(d['expires']))}まで" if d.get("expires") else "期限なし"
    return f"{what}（理由：{d.get('reason', '')}、{until}{by}）"


def _maintenance(e: Event, when: Callable[[float], str]) -> str:
    d = e.detail
    by = f"、{d['by']}" if d.get("by") else ""
    if d.get("op") == "remove":
        return f"メンテナンス枠 No.{d.get('id')} を削除{by}"
    mode = "切り替えない" if d.get("mode") == "suppress" else "代替受付に切り替える"
    span = f"{when(float(d['start']))}〜{when(float(d['end']))}、" if d.get("start") and d.get("end") else ""
    return f"メンテナンス枠 No.{d.get('id')} を登録（{span}{mode}、理由：{d.get('reason', '')}{by}）"


def _notify(e: Event, when: Callable[[float], str]) -> str:
    d = e.detail
    if d.get("drill"):
        return f"訓練のメッセージ（{d.get('topic')}）を送信：{d.get('targets', 0)}件中 失敗{d.get('failed', 0)}件"
    sent = "送信" if d.get("sent", True) else f"未送信（{d.get('state')}）"
    return f"スタッフへの通知（{d.get('topic')}）：{sent}" + ("（重複の可能性）" if d.get("duplicate") else "")


def _simple(text: Callable[[dict[str, Any]], str]) -> Words:
    return lambda e, when: text(e.detail)


_JAPANESE: dict[str, Words] = {
    "verdict": _verdict,
    "failover": _failover,
    "action": _action,
    "override": _override,
    "maintenance": _maintenance,
    "notify": _notify,
    "network": _simple(
        lambda d: "監視側のネットワーク障害（カナリア失敗）" if d.get("down") else "監視側のネットワークが回復"
    ),
    "service": _simple(
        lambda d: {"started": "portalguard を起動", "stopped": "portalguard を停止"}.get(
            str(d.get("state")), f"portalguard：{d.get('state')}"
        )
    ),
    "drill": _simple(lambda d: "訓練：成功" if d.get("ok") else "訓練：失敗"),
    "suppressed_down": _simple(lambda d: "停止中ですが手動で切り替えを止めています（スタッフに通知）"),
    "staff_session": _simple(
        lambda d: {
            "login": f"ログイン：{d.get('account')}",
            "logout": f"ログアウト：{d.get('account')}",
        }.get(
            str(d.get("op")),
            f"ログインを拒否：{d.get('account') or '登録のない名前'}"
            + ("（パスワード誤りの後の待ち時間中）" if d.get("throttled") else "（パスワード違い）"),
        )
    ),
    "login_failing": _simple(lambda d: f"スタッフ用ログインに失敗しています（{d.get('endpoint')}、スタッフに通知）"),
}
