"""What staff read: the notification texts, in Japanese (default) and English.

``render(topic, language, **fields) -> (title, body)`` is pure: no I/O, no clock. Times are unix
seconds in ``fields`` and are shown in the clinic's time zone (``tz``). A field a template does not
name is never shown, which is how ``booking_request`` keeps patient data out: its templates name
only the count and numbers of the requests, the portal and the staff link (the request itself is medical personal
data and stays behind the /staff login).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from watchdog.duration import parse_duration

DRILL_PREFIX = "[訓練/DRILL] "
LANGUAGES = ("ja", "en")
TOPICS = (
    "outage",
    "reminder",
    "recovered",
    "action_failed",
    "network_degraded",
    "network_restored",
    "flapping",
    "down_while_suppressed",
    "login_failed",
    "booking_request",
    "ads_max_active",
    "store_failing",
    "store_damaged",
    "store_restored",
    "store_was_down",
    "stopped_in_failover",
)

_MISSING = "—"

_DRILL_LINE = {
    "ja": "これは訓練です。実際の障害ではありません（患者さん・広告費への影響はありません）。\n\n",
    "en": "This is a drill. Nothing is actually down (no effect on patients or ad spend).\n\n",
}

# (title, body) per topic and language; {names} are the display values made by _display().
_TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "outage": {
        "ja": (
            "【予約サイト障害】{portal}：代替受付に切り替えました",
            "{clinic}\n予約サイト「{portal}」が使えません。\n"
            "原因：{reason}\n発生：{since}\n"
            "切り替えた対策：{measures}\n代替予約ページ：{fallback_url}\n{mirror_line}\n"
            "お電話と代替予約ページからの予約依頼に対応してください。"
            "予約サイトが復旧すると自動で元に戻し、お知らせします。",
        ),
        "en": (
            "[Booking portal down] {portal}: switched to fallback booking",
            '{clinic}\nThe booking portal "{portal}" is not usable.\n'
            "Cause: {reason}\nSince: {since}\n"
            "Measures switched on: {measures}\nFallback booking page: {fallback_url}\n{mirror_line}\n"
            "Please take bookings by phone and handle requests from the fallback page. "
            "When the portal recovers, everything is switched back and you will be told.",
        ),
    },
    "reminder": {
        "ja": (
            "【継続中】{portal}：予約サイトの障害が{duration}続いています",
            "{clinic}\n予約サイト「{portal}」は{since}から使えないままです（{duration}）。\n"
            "代替受付を続けています：{measures}\n代替予約ページ：{fallback_url}\n\n"
            "復旧すると自動で元に戻します。予約サイトが使えると確認できた場合は、スタッフ画面の"
            "「誤報として停止」で手動で戻せます：\n  {decide_url}",
        ),
        "en": (
            "[Still down] {portal}: booking portal down for {duration}",
            '{clinic}\nThe booking portal "{portal}" has been unusable since {since} ({duration}).\n'
            "Fallback measures stay on: {measures}\nFallback booking page: {fallback_url}\n\n"
            "They switch off by themselves on recovery. If you have confirmed the portal works, "
            'switch back by hand on the staff console ("stop as a false alarm"):\n  {decide_url}',
        ),
    },
    "recovered": {
        "ja": (
            "【復旧】{portal}：予約サイトが復旧しました",
            "{clinic}\n予約サイト「{portal}」が復旧しました。\n"
            "障害時間：{duration}（{since} 〜 {ended}）\n元に戻した対策：{measures}\n\n"
            "代替予約ページで受けた予約依頼が残っていないか、スタッフ画面で確認してください：{staff_url}",
        ),
        "en": (
            "[Recovered] {portal}: booking portal is back",
            '{clinic}\nThe booking portal "{portal}" is back.\n'
            "Outage: {duration} ({since} – {ended})\nMeasures switched off: {measures}\n\n"
            "Please check the staff page for booking requests still open: {staff_url}",
        ),
    },
    "action_failed": {
        "ja": (
            "【要対応】{portal}：対策「{action}」が失敗しました",
            "{clinic}\n対策「{action}」（予約サイト「{portal}」）が失敗しました。\nエラー：{error}\n{what_next}",
        ),
        "en": (
            '[Action needed] {portal}: measure "{action}" failed',
            '{clinic}\nThe measure "{action}" of booking portal "{portal}" failed.\nError: {error}\n{what_next}',
        ),
    },
    "network_degraded": {
        "ja": (
            "【監視側の障害】監視サーバーのネットワークに問題があります",
            "{clinic}\n{since}から、常に使えるはずの確認用サイト（カナリア）にも接続できません。\n"
            "予約サイトではなく監視サーバー側（回線・ルーター・DNS）の問題の可能性が高いため、"
            "自動の切り替えは行っていません。\n\n"
            "回線を確認してください。予約サイトが実際に使えない場合は、スタッフ画面の各予約サイトの"
            "「判断」から手動で切り替えられます：\n  {overview_url}",
        ),
        "en": (
            "[Monitor network degraded] the monitor's own network has a problem",
            "{clinic}\nSince {since}, the always-up check sites (canaries) cannot be reached either.\n"
            "The problem is most likely the monitor's own network (line, router, DNS), not the booking "
            "portal, so no failover was done.\n\n"
            "Please check the network. If the portal really is down, switch by hand from the portal's "
            '"decide" page on the staff console:\n  {overview_url}',
        ),
    },
    "network_restored": {
        "ja": (
            "【監視側 復旧】監視サーバーのネットワークが復旧しました",
            "{clinic}\n監視サーバーのネットワークが復旧しました（{duration}、{since}から）。"
            "予約サイトの監視を再開しています。",
        ),
        "en": (
            "[Monitor network restored] monitoring resumed",
            "{clinic}\nThe monitor's own network is back ({duration}, since {since}). "
            "The booking portals are watched again.",
        ),
    },
    "flapping": {
        "ja": (
            "【要判断】{portal}：切り替えが頻発しています",
            "{clinic}\n予約サイト「{portal}」の状態が不安定で、切り替えが繰り返されています。\n"
            "状況：{cause}\n代替受付はひとまず続けます。予約サイトが使えていて、直近1時間の切り替え回数が"
            "上限（failover.max_switches_per_hour）を下回ると、自動で通常に戻します"
            "（このまま使えていれば {held_until} ごろ）。"
            "それまでに判断する場合は、スタッフ画面で「フォールバックを開始」（代替受付を続ける）・"
            "「誤報として停止」（通常に戻す）・「自動に戻す」から選べます：\n  {decide_url}",
        ),
        "en": (
            "[Decision needed] {portal}: switching too often",
            '{clinic}\nThe booking portal "{portal}" is unstable and failover keeps switching.\n'
            "Situation: {cause}\nThe fallback stays on for now. It switches back by itself once the portal "
            "is up and the failovers within the last hour fall below the limit "
            "(failover.max_switches_per_hour): at about {held_until} if it stays up. To decide sooner, "
            'choose on the staff console: "start the fallback" (keep it), "stop as a false alarm" '
            '(back to normal) or "back to automatic":\n  {decide_url}',
        ),
    },
    "down_while_suppressed": {  # DOWN while `failover off` or a suppress window keeps failover off
        "ja": (
            "【要確認】{portal}：停止中ですが手動で切り替えを止めています",
            "{clinic}\n予約サイト「{portal}」が{since}から使えません（{reason}）。\n"
            "停止中ですが手動で切り替えを止めています：{suppressed_by}\n"
            "代替予約ページ・広告には切り替えていません。患者さんは予約できない状態です。\n\n"
            "予約サイトが本当に使えない場合は、スタッフ画面で止めている設定を外してください"
            "（「自動に戻す」、またはすぐ切り替える「フォールバックを開始」。メンテナンス枠は削除）：\n"
            "  {decide_url}",
        ),
        "en": (
            "[Please check] {portal}: down, but failover is kept off by hand",
            '{clinic}\nThe booking portal "{portal}" has been unusable since {since} ({reason}).\n'
            "It is down, but failover is kept off by hand: {suppressed_by}\n"
            "No fallback page or ads were switched on: patients cannot book.\n\n"
            'If the portal really is down, remove what keeps failover off on the staff console ("back to '
            'automatic", or "start the fallback" to switch now; remove a maintenance window):\n  {decide_url}',
        ),
    },
    "login_failed": {  # an admin endpoint's staff login refused for down_after, whatever the trigger
        "ja": (
            "【要確認】{portal}：スタッフ用ログインに失敗しています",
            "{clinic}\n予約サイト「{portal}」のスタッフ用ログイン（{endpoint}）が{since}から失敗しています。\n"
            "スタッフ用ログインに失敗しています。パスワードが変わっていないか確認してください。\n"
            "エラー：{error}\n"
            "確認する設定：{config_key}.username と {config_key}.password\n"
            "（パスワードを変えた場合は設定を更新して portalguard を再起動し、portalguard probe で確認してください）",
        ),
        "en": (
            "[Please check] {portal}: the staff login fails",
            '{clinic}\nThe staff login ({endpoint}) of booking portal "{portal}" has been failing since {since}.\n'
            "The staff login fails: check whether the password was changed.\n"
            "Error: {error}\n"
            "Settings to check: {config_key}.username and {config_key}.password\n"
            "(If the password changed, update the config, restart portalguard and check with portalguard probe.)",
        ),
    },
    "booking_request": {  # one message per batch: the requests of a minute (failover.staff.bookings)
        "ja": (
            "【予約依頼】新しい予約リクエストが{count}件あります（{portal}）",
            "{clinic}\n代替予約ページから新しい予約リクエストが{count}件あります（{portal}）。\n"
            "受付番号：{numbers}\n"
            "内容はスタッフ画面で確認してください：{staff_url}\n"
            "（個人情報保護のため、この通知には患者さんの情報を載せていません）",
        ),
        "en": (
            "[Booking requests] {count_en} ({portal})",
            "{clinic}\n{count_en} arrived from the fallback page ({portal}).\n"
            "Numbers: {numbers}\n"
            "Open them on the staff page: {staff_url}\n"
            "(Patient details are not sent in notifications, to protect personal data.)",
        ),
    },
    "ads_max_active": {
        "ja": (
            "【要確認】{portal}：広告を{max_active}で自動停止しました",
            "{clinic}\n広告「{action}」が上限の{max_active}続いたため、費用を抑えるため停止しました。\n"
            "予約サイト「{portal}」がまだ使えず広告を再開する場合は、スタッフ画面の"
            "「フォールバックを開始」で手動で切り替えてください：\n  {decide_url}",
        ),
        "en": (
            "[Please confirm] {portal}: ads paused after {max_active}",
            '{clinic}\nThe ads "{action}" ran for their maximum of {max_active} and were paused to cap spend.\n'
            'If the booking portal "{portal}" is still down and the ads should run on, confirm by hand on the '
            'staff console ("start the fallback"):\n  {decide_url}',
        ),
    },
    "store_failing": {
        "ja": (
            "【要対応】portalguard が記録（ストア）に書き込めません",
            "{clinic}\n{since}から、portalguard が記録ファイル（ストア）に書き込めません。\n"
            "エラー：{error}\n{store_cause}\n"
            "切り替えと通知はメモリ上の状態で続けています（今再起動すると、書き込めなかった分は失われます）。\n\n"
            "対処：{store_fix}"
            "書き込めるようになると自動で記録を再開します。状態は /healthz で確認できます。",
        ),
        "en": (
            "[Action needed] portalguard cannot write its store",
            "{clinic}\nSince {since}, portalguard cannot write its store file.\n"
            "Error: {error}\n{store_cause}\n"
            "Failover and alerts go on from memory (if the service restarted now, what could not be written "
            "would be lost).\n\n"
            "What to do: {store_fix} portalguard writes again by itself as soon as it can; /healthz "
            "shows the state.",
        ),
    },
    "store_damaged": {
        "ja": (
            "【要対応】portalguard の記録（ストア）が壊れています",
            "{clinic}\n{since}から、portalguard の記録ファイル（ストア）が壊れていて読み書きできません。\n"
            "検査結果：{error}\n"
            "切り替えと通知はメモリ上の状態で続けています（今再起動すると、書き込めなかった分は失われます）。\n\n"
            "対処：portalguard を停止し、ストアのファイルを最新のバックアップで置き換えてから起動してください"
            "（README「Running in production」のバックアップの項）。状態は /healthz で確認できます。",
        ),
        "en": (
            "[Action needed] portalguard's store is damaged",
            "{clinic}\nSince {since}, portalguard's store file is damaged and cannot be read or written.\n"
            "Check result: {error}\n"
            "Switching and notices go on from memory (a restart now loses what could not be written).\n\n"
            "What to do: stop portalguard, replace the store file with the latest backup, start it again "
            "(README, Running in production: backups). /healthz shows the state.",
        ),
    },
    "store_restored": {
        "ja": (
            "【復旧】portalguard の記録（ストア）への書き込みが戻りました",
            "{clinic}\nportalguard が記録ファイルに再び書き込めるようになりました（{duration}、{since}から）。"
            "メモリ上に保持していた状態は書き込み済みです。",
        ),
        "en": (
            "[Store writable again] portalguard records again",
            "{clinic}\nportalguard can write its store again ({duration}, since {since}). "
            "What was kept in memory meanwhile has been written.",
        ),
    },
    "store_was_down": {
        "ja": (
            "【お知らせ】portalguard のデータベースに{duration}接続できませんでした",
            "{clinic}\n{since}から{ended}まで（{duration}）、portalguard（{site}）は共有のデータベース"
            "（PostgreSQL）に接続できませんでした。\n"
            "その間、予約ページ（/book）は最後の状態のまま表示を続けましたが、切り替え・広告・通知は"
            "行っていません（予約依頼の送信には、お電話をお願いする画面が出ていました）。\n"
            "接続は戻り、状態を確かめて必要な切り替えを再開しています。現在の状況：{overview_url}",
        ),
        "en": (
            "[Notice] portalguard could not reach its database for {duration}",
            "{clinic}\nFrom {since} to {ended} ({duration}), portalguard ({site}) could not reach the shared "
            "database (PostgreSQL).\n"
            "Meanwhile /book went on showing the last known state, but nothing was switched and nobody was "
            "told (a booking request got the page that asks patients to phone).\n"
            "The database answers again; portalguard has checked the state and goes on switching as needed. "
            "Now: {overview_url}",
        ),
    },
    "stopped_in_failover": {
        "ja": (
            "【注意】portalguard が停止しました：{portal} は代替受付中です",
            "{clinic}\n予約サイト「{portal}」の代替受付中に、portalguard が停止しました（{since}）。\n"
            "止まるもの：代替予約ページ（{fallback_url}）。{static_line}\n"
            "そのまま続くもの：{staying}。広告は配信され、費用がかかり続けます。\n\n"
            "portalguard を起動し直すと、状態を確かめて自動で元に戻します（systemctl start portalguard）。"
            "起動し直せない場合は、Google 広告の管理画面でキャンペーンを一時停止してください。",
        ),
        "en": (
            "[Attention] portalguard stopped while {portal} is in failover",
            '{clinic}\nportalguard stopped ({since}) while the booking portal "{portal}" was failed over.\n'
            "Goes away: the fallback booking page ({fallback_url}). {static_line}\n"
            "Stays on: {staying}. The ads keep running and cost money.\n\n"
            "Start portalguard again and it checks and puts everything right by itself "
            "(systemctl start portalguard). If it cannot be started, pause the campaign in Google Ads.",
        ),
    },
}

_STORE_TROUBLE = {  # (cause, what to do) by the store's kind: a SQLite file, or a PostgreSQL server
    (False, "ja"): (
        "ディスクの空き容量不足の可能性が高いです。",
        "サーバーのディスクの空きを確保してください（df -h で確認し、古いログやバックアップを削除）。",
    ),
    (True, "ja"): (
        "データベース（PostgreSQL）に接続できないか、書き込みを拒否されています。",
        "データベースのサーバーが動いているか、接続先・パスワード・空き容量を確認してください（管理会社へ連絡）。",
    ),
    (False, "en"): (
        "The disk is most likely full.",
        "free disk space on the server (check with df -h; remove old logs or backups), or fix the store "
        "file's permissions.",
    ),
    (True, "en"): (
        "The database (PostgreSQL) cannot be reached or refuses writes.",
        "check that the database server runs, its address and password, and its free space (ask its provider).",
    ),
}

_STATIC_LINE = {
    (True, "ja"): "患者さんには予備の静的ページ（電話番号と診療時間のみ）が表示されます。",
    (False, "ja"): "患者さんにはエラーが表示されます（予備の静的ページは未設定：server.static_fallback_dir）。",
    (True, "en"): "Patients get the static copy of the page (phone and hours only) instead.",
    (False, "en"): "Patients get an error page (no static copy set up: server.static_fallback_dir).",
}

_WHAT_NEXT = {
    ("ja", True): "自動の再試行はしません。設定（actions.{action}）と接続先を確認し、"
    "portalguard doctor で確認してから portalguard status で状態を見てください。",
    ("ja", False): "自動で再試行しています。続く場合は接続先と設定（actions.{action}）を確認してください。",
    ("en", True): "It will not be retried. Check the config (actions.{action}) and the service it uses, "
    "run portalguard doctor, then portalguard status.",
    ("en", False): "It is retried automatically. If it keeps failing, check the service and the config "
    "(actions.{action}).",
}


def render(topic: str, language: str = "ja", **fields: Any) -> tuple[str, str]:
    """The (title, body) of a staff message. Fields a topic does not use are ignored.

    Common fields: ``portal``, ``clinic``, ``tz`` (IANA zone, default Asia/Tokyo), ``drill``.
    Times (``since``, ``ended``, ``now``) are unix seconds; ``measures`` is a list of
    (action name, its label by language); ``permanent`` is a bool; durations are seconds.
    """
    if topic not in _TEMPLATES:
        raise ValueError(f"unknown message topic {topic!r} (known: {', '.join(TOPICS)})")
    lang = language if language in LANGUAGES else "ja"
    title, body = _TEMPLATES[topic][lang]
    values = _Values(_display(lang, fields))
    title, body = title.format_map(values), body.format_map(values)
    if fields.get("drill"):
        return DRILL_PREFIX + title, _DRILL_LINE[lang] + body
    return title, body


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return _MISSING  # a missing detail must not cost staff the whole message


def _display(lang: str, f: Mapping[str, Any]) -> dict[str, str]:
    """Turn raw fields into the strings the templates show."""
    tz = ZoneInfo(str(f.get("tz") or "Asia/Tokyo"))
    since, ended, now = f.get("since"), f.get("ended"), f.get("now")
    end = ended if ended is not None else now
    out = {k: str(v) for k, v in f.items() if isinstance(v, str | int) and not isinstance(v, bool)}
    out["portal"] = str(f.get("portal") or f.get("portal_id") or _MISSING)  # the name people read
    out["portal_id"] = str(f.get("portal_id") or f.get("portal") or _MISSING)  # what commands take
    out["since"] = format_time(since, tz) if since is not None else _MISSING
    out["ended"] = format_time(ended, tz) if ended is not None else _MISSING
    if since is not None and end is not None:
        out["duration"] = format_span(float(end) - float(since), lang)
    if f.get("max_active") is not None:
        out["max_active"] = format_span(float(f["max_active"]), lang)
    out["measures"] = _measures(f.get("measures") or (), lang)
    out["staying"] = _measures(f.get("staying") or (), lang)
    out["static_line"] = _STATIC_LINE[(bool(f.get("static_page")), lang)]
    out["store_cause"], out["store_fix"] = _STORE_TROUBLE[(bool(f.get("database")), lang)]
    if f.get("numbers"):
        out["numbers"] = _numbers(list(f["numbers"]), lang)
        count = int(f.get("count") or len(f["numbers"]))
        out["count"] = str(count)
        out["count_en"] = f"{count} new booking request{'s' if count != 1 else ''}"
    if isinstance(f.get("reason"), str):
        out["reason"] = cause_in_words(f["reason"], lang)
    if isinstance(f.get("cause"), str):
        out["cause"] = cause_in_words(f["cause"], lang)
    if "held_until" in f:
        held = f["held_until"]
        out["held_until"] = format_time(held, tz) if held is not None else ("未定" if lang == "ja" else "not known")
    if not f.get("fallback_url"):
        out["fallback_url"] = "（未設定：server.public_url）" if lang == "ja" else "(not set: server.public_url)"
    out["what_next"] = _WHAT_NEXT[(lang, bool(f.get("permanent")))].format(action=out.get("action", "?"))
    out["mirror_line"] = _mirror_line(f, tz, lang)
    # Staff decide in the console, not in a terminal: each message links to the page that fits.
    staff = str(f.get("staff_url") or "").rstrip("/")
    out["overview_url"] = f"{staff}/overview"
    out["decide_url"] = f"{staff}/decide/{quote(out['portal_id'], safe='')}"
    if f.get("by"):
        out["suppressed_by"] = _suppressed_by(f, tz, lang)
    return out


def _suppressed_by(f: Mapping[str, Any], tz: ZoneInfo, lang: str) -> str:
    """What keeps failover off, in words: the override or the maintenance window, its reason and end."""
    until = f.get("until")
    why = str(f.get("why") or _MISSING)
    if f["by"] == "maintenance":
        if lang == "ja":
            return f"メンテナンス枠 No.{f.get('window')}（切り替えない、理由：{why}、{format_time(until, tz)}まで）"
        return f"maintenance window No. {f.get('window')} (suppress; reason: {why}; until {format_time(until, tz)})"
    if lang == "ja":
        end = f"{format_time(until, tz)}まで" if until is not None else "期限なし（「自動に戻す」まで）"
        return f"手動の「誤報として停止」（理由：{why}、{end}）"
    end = f"until {format_time(until, tz)}" if until is not None else 'no end (until "back to automatic")'
    return f'"stop as a false alarm" by hand (reason: {why}; {end})'


def _mirror_line(f: Mapping[str, Any], tz: ZoneInfo, lang: str) -> str:
    """How many appointments the mirror holds for today and tomorrow, and how fresh it is: counts and
    a link, never a name (the list itself is behind the staff login). Empty without a mirror."""
    if f.get("mirror_today") is None:
        return ""
    synced = f.get("mirror_synced")
    when = format_time(synced, tz) if synced else ("未同期" if lang == "ja" else "never")
    url = f"{f.get('staff_url') or ''}/appointments"
    today, tomorrow = int(f["mirror_today"]), int(f.get("mirror_tomorrow") or 0)
    if lang == "ja":
        return f"予約の控え：本日{today}件・明日{tomorrow}件（最終同期 {when}）\n予約一覧：{url}\n"
    return f"Appointment copy: {today} today, {tomorrow} tomorrow (last synced {when})\nAppointments: {url}\n"


_CAUSES = {  # the decision's causes (``failover.decision``) as staff read them
    "override on: ": {"ja": "手動で切り替えました（理由：{}）", "en": "switched on by hand (reason: {})"},
    "override off: ": {"ja": "手動で止めました（理由：{}）", "en": "switched off by hand (reason: {})"},
}
_MAINTENANCE = re.compile(r"^maintenance window #(\d+) \((suppress|failover)\)$")
_MAINTENANCE_WORDS = {
    "ja": "メンテナンス枠 No.{}（{}）",
    "en": "maintenance window No. {} ({})",
}
_MAINTENANCE_MODES = {"ja": {"failover": "代替受付に切り替え", "suppress": "切り替えない"}, "en": {}}


_DECISIONS = {  # the decision's own texts (``failover.decision``), as staff read them
    re.compile(r"^portal up but failed over (\d+)× within an hour: held on \(flapping\)$"): {
        "ja": "予約サイトは使えていますが、1時間に{0}回切り替わったため代替受付を続けています（切り替えの頻発）",
        "en": "the portal is up but failed over {0}× within an hour: the fallback stays on (switching too often)",
    },
    re.compile(r"^portal up; held (.+) more \(min_failover\)$"): {
        "ja": "予約サイトは使えていますが、最低継続時間（min_failover）のため、あと{0}代替受付を続けます",
        "en": "the portal is up; the fallback stays on {0} more (min_failover)",
    },
    re.compile(r"^portal down$"): {"ja": "予約サイトが使えません", "en": "the portal is down"},
    re.compile(r"^portal up$"): {"ja": "予約サイトが使えます", "en": "the portal is up"},
}


def cause_in_words(reason: str, lang: str) -> str:
    """Why failover switched, in the staff's language: a manual decision or a maintenance window in
    words ("手動で切り替えました（理由：…）"), not the decision's internal text; probe findings as they are."""
    for pattern, by_lang in _DECISIONS.items():
        if m := pattern.match(reason):
            return by_lang[lang].format(*(_span_words(g, lang) for g in m.groups()))
    for prefix, words in _CAUSES.items():
        if reason.startswith(prefix):
            return words[lang].format(reason.removeprefix(prefix))
    if reason == "drill (rehearsal)":
        return "訓練（リハーサル）" if lang == "ja" else "drill (rehearsal)"
    if m := _MAINTENANCE.match(reason):
        mode = _MAINTENANCE_MODES[lang].get(m.group(2), m.group(2))
        return _MAINTENANCE_WORDS[lang].format(m.group(1), mode)
    return reason


def _span_words(text: str, lang: str) -> str:
    """A duration as the decision wrote it (``4m 30s``) in the staff's words; other text as it is."""
    try:
        return format_span(parse_duration(text.replace(" ", "")), lang) if not text.isdigit() else text
    except ValueError:
        return text


def _measures(measures: Iterable[tuple[str, Mapping[str, str]]], lang: str) -> str:
    labels = [f"{by_lang.get(lang, name)} ({name})" for name, by_lang in measures]
    if labels:
        return "、".join(labels) if lang == "ja" else ", ".join(labels)
    return "なし" if lang == "ja" else "none"


_NUMBERS_LISTED = 10  # more than this: the first and the last (the count says how many)


def _numbers(numbers: list[int], lang: str) -> str:
    """``No.12、No.13`` / ``No. 12, No. 13``; a long batch as ``No.12 … No.311``."""
    prefix = "No." if lang == "ja" else "No. "
    shown = [f"{prefix}{n}" for n in sorted(numbers)]
    if len(shown) > _NUMBERS_LISTED:
        return f"{shown[0]} … {shown[-1]}"
    return ("、" if lang == "ja" else ", ").join(shown)


def format_time(ts: float, tz: ZoneInfo) -> str:
    """``2026-11-23 19:44 JST``: minutes are what staff act on."""
    return datetime.fromtimestamp(float(ts), tz).strftime("%Y-%m-%d %H:%M %Z")


def format_span(seconds: float, lang: str = "ja") -> str:
    """``1時間5分`` / ``1 h 5 min``; under a minute is ``1分未満`` / ``under a minute``."""
    minutes = int(max(seconds, 0) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if lang == "ja":
        parts = [f"{days}日" if days else "", f"{hours}時間" if hours else "", f"{mins}分" if mins else ""]
        return "".join(parts) or "1分未満"
    en = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{mins} min" if mins else ""]
    return " ".join(p for p in en if p) or "under a minute"
