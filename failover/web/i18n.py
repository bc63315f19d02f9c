"""The fallback page's words in Japanese (the default) and English, and how a language is chosen.

Every key exists in both languages (a test checks it); templates call ``t("key", **values)``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

LANGS = ("ja", "en")
DEFAULT_LANG = "ja"

Translate = Callable[..., str]

STRINGS: dict[str, dict[str, str]] = {
    "ja": {
        "html_lang": "ja",
        "other_lang": "en",
        "other_lang_name": "English",
        "title_book": "ご予約のご希望受付",
        "notice_title": "ただいまWeb予約がご利用いただけません",
        "notice_body": (
            "予約サイトに一時的な障害が発生しています。ご不便をおかけして申し訳ありません。"
            "お電話でご予約いただくか、下のフォームからご希望をお送りください。"
            "当院から折り返しお電話してご予約を確定します。"
        ),
        "call_button": "電話で予約する",
        "static_notice_body": (
            "予約の受付に一時的な障害が発生しています。ご不便をおかけして申し訳ありません。お電話でご予約ください。"
        ),
        "static_portal_link": "予約サイトを開く（復旧していればご利用いただけます）",
        "hours": "診療時間",
        "address": "所在地",
        "form_title": "ご予約のご希望を送る",
        "form_intro": "送信後、当院からお電話でご予約を確定します。送信しただけでは予約は確定しません。",
        "required": "必須",
        "optional": "任意",
        "name": "お名前",
        "name_hint": "例：山田 花子",
        "phone": "電話番号",
        "phone_hint": "日中につながる番号（例：090-1234-5678）",
        "email": "メールアドレス",
        "preferred": "ご希望の日時",
        "preferred_hint": "第3希望まで選べます。ご希望がなければ空欄のままで構いません。",
        "choice": "第{n}希望",
        "date": "日付",
        "time": "時間帯",
        "time_any": "指定なし",
        "time_morning": "午前",
        "time_afternoon": "午後",
        "time_evening": "夕方以降",
        "visit": "受診",
        "visit_new": "初めて（初診）",
        "visit_returning": "通院したことがある（再診）",
        "reason": "ご来院の理由・症状",
        "reason_hint": "{max}文字まで",
        "consent": "入力した電話番号・メールアドレスに、当院から予約の件で連絡することに同意します",
        "honeypot": "この欄は入力しないでください",
        "submit": "送信する",
        "errors_summary": "入力内容をご確認ください（{n}件）",
        "err_name_required": "お名前を入力してください",
        "err_name_long": "お名前は{max}文字以内で入力してください",
        "err_phone_required": "電話番号を入力してください",
        "err_phone_invalid": "電話番号の形式が正しくありません（例：090-1234-5678、03-1234-5678）",
        "err_email_invalid": "メールアドレスの形式が正しくありません（例：hanako@example.jp）",
        "err_date_invalid": "日付を正しく選んでください",
        "err_date_past": "本日以降の日付を選んでください",
        "err_date_far": "{days}日以内の日付を選んでください",
        "err_date_missing": "時間帯を選んだ場合は日付も選んでください",
        "err_time_invalid": "時間帯を選び直してください",
        "err_visit_required": "初診か再診かを選んでください",
        "err_reason_long": "{max}文字以内で入力してください",
        "err_consent_required": "ご連絡への同意がないと、ご予約を確定できません",
        "err_text_invalid": "使用できない文字が含まれています",
        "csrf_expired": "ページの有効期限が切れました。内容をご確認のうえ、もう一度「送信する」を押してください。",
        "done_title": "ご予約のご希望を受け付けました",
        "done_number": "受付番号",
        "done_body": (
            "診療時間内に当院からお電話し、ご予約を確定します。お電話でご予約が確定するまでは、予約は成立していません。"
        ),
        "done_call": "お急ぎの方はお電話ください",
        "done_keep": "お問い合わせの際は受付番号をお伝えください。",
        "back": "フォームに戻る",
        "preview_banner": "プレビュー（訓練用）：患者さんには現在、通常の予約サイトが表示されています。",
        "chooser_title": "ご予約の窓口を選んでください",
        "chooser_group_title": "ご予約の医院を選んでください",
        "chooser_fallback": "ただいまWeb予約の代わりに、お電話と受付フォームで承っています",
        "chooser_online": "Web予約を受け付けています",
        "error_title": "エラー",
        "error_call": "お電話でもご予約いただけます",
        "e400": "送信内容を読み取れませんでした。ページを読み込み直して、もう一度お試しください。",
        "e403_preview": "プレビュー用のリンクが正しくありません。",
        "portal_back": "Web予約が再開しました。お手数ですが、予約サイトからご予約ください。",
        "portal_back_link": "予約サイトへ進む",
        "e404": "ページが見つかりません。",
        "e405": "この操作はできません。",
        "e413": "送信内容が大きすぎます。ご来院の理由を短くして、もう一度お試しください。",
        "e415": "送信形式が正しくありません。ページを読み込み直して、もう一度お試しください。",
        "e429": "短い間に送信が続いたため、受け付けを一時停止しています。1分ほど待ってからもう一度お試しください。",
        "e500": "申し訳ありません。ただいま受け付けることができませんでした。お電話でご予約ください。",
        "e503": "申し訳ありません。ご予約のご希望を保存できませんでした。お電話でご予約ください。",
        "staff_title": "予約のご希望一覧",
        "appt_title": "予約一覧（控え）",
        "appt_days": "日付",
        "appt_pick": "日付を選ぶ",
        "appt_show": "表示",
        "appt_to_requests": "予約のご希望一覧へ",
        "appt_synced": "最終同期",
        "appt_never": "まだ同期していません",
        "appt_stale": "古い可能性があります（最近の変更が反映されていないかもしれません）",
        "appt_error": "直近のエラー",
        "appt_no_mirror": "予約の控え（mirror）が設定されていません。",
        "appt_unread": "{n}通のメールを読み取れませんでした：テンプレートを確認してください",
        "appt_unread_when": "受信",
        "appt_unread_subject": "件名",
        "appt_list": "予約 {booked}件（キャンセル {cancelled}件）",
        "appt_none": "この日の予約は控えにありません。",
        "appt_time": "時間",
        "appt_menu": "メニュー",
        "appt_check": "来院",
        "appt_booked": "予約",
        "appt_cancelled": "キャンセル",
        "appt_vanished": "キャンセル（{at} に予約サイトの一覧から消えました）",
        "appt_requests": "この日に届いた予約のご希望（{n}件）",
        "appt_requests_none": "この日に届いたご希望はありません。",
        "appt_printed": "印刷：{at}",
        "appt_link": "予約一覧（控え）",
        "staff_disabled": (
            "スタッフ画面は無効です（portalguard staff add で作ったアカウントも、"
            "設定の staff.token や staff.username/password もありません）。"
        ),
        "staff_unauthorized": "スタッフ用のログインが必要です。",
        "login_title": "スタッフ ログイン",
        "login_name": "アカウント名",
        "login_password": "パスワード",
        "login_submit": "ログイン",
        "login_failed": "アカウント名またはパスワードが違います。確かめてもう一度お試しください。",
        "login_wait": "ログインの失敗が続いたため、{seconds} 秒待ってからもう一度お試しください。",
        "logout": "ログアウト",
        "staff_signed_in": "{name}（{role}）でログイン中",
        "staff_viewer_only": (
            "このアカウントは閲覧専用です。変更は operator のアカウントでログインして行ってください"
            "（管理者が portalguard staff add NAME --role operator で作成します）。"
        ),
        "staff_state": "予約サイトの状態",
        "staff_list": "受け付けたご希望",
        "staff_portal": "窓口",
        "staff_clinic": "医院",
        "staff_clinic_filter": "医院",
        "staff_whole_group": "グループ全体",
        "staff_failover_on": "フェイルオーバー中",
        "staff_held": (
            "切り替えが頻発（1時間に{count}回）のため代替受付を継続中："
            "予約サイトが使えていれば {until} ごろ自動で戻ります"
        ),
        "staff_held_unknown": "未定",
        "staff_failover_off": "通常",
        "staff_page_on": "臨時ページ表示中",
        "staff_page_off": "予約サイトへ転送中",
        "staff_verdict": "判定",
        "staff_since": "開始",
        "staff_filter": "絞り込み",
        "staff_all": "すべて",
        "staff_none": "該当するご希望はありません。",
        "staff_received": "受付日時",
        "staff_details": "内容",
        "staff_status": "状態",
        "staff_change": "変更",
        "staff_drill": "訓練",
        "staff_shown": "{n}件を表示（新しい順、最大{limit}件）",
        "status_new": "新規",
        "status_contacted": "連絡済み",
        "status_booked": "予約済み",
        "status_cancelled": "キャンセル",
    },
    "en": {
        "html_lang": "en",
        "other_lang": "ja",
        "other_lang_name": "日本語",
        "title_book": "Appointment requests",
        "notice_title": "Online booking is temporarily unavailable",
        "notice_body": (
            "Our online booking service is having a temporary problem. We are sorry for the inconvenience. "
            "Please call us, or send your preferred times with the form below: "
            "we will call you back to confirm your appointment."
        ),
        "call_button": "Call to book",
        "static_notice_body": (
            "Our booking service is temporarily unavailable. We are sorry for the inconvenience. "
            "Please call us to book."
        ),
        "static_portal_link": "Open the booking portal (it works again once it has recovered)",
        "hours": "Opening hours",
        "address": "Address",
        "form_title": "Request an appointment",
        "form_intro": (
            "After you send this form, we will call you to confirm. "
            "Sending the form alone does not book an appointment."
        ),
        "required": "required",
        "optional": "optional",
        "name": "Name",
        "name_hint": "e.g. Hanako Yamada",
        "phone": "Phone number",
        "phone_hint": "A Japanese number we can reach you on during the day (e.g. 090-1234-5678)",
        "email": "E-mail",
        "preferred": "Preferred dates and times",
        "preferred_hint": "Up to three choices. Leave empty if any time suits you.",
        "choice": "Choice {n}",
        "date": "Date",
        "time": "Time of day",
        "time_any": "Any time",
        "time_morning": "Morning",
        "time_afternoon": "Afternoon",
        "time_evening": "Evening",
        "visit": "Visit",
        "visit_new": "First visit",
        "visit_returning": "I have been a patient here before",
        "reason": "Reason for your visit",
        "reason_hint": "Up to {max} characters",
        "consent": "I agree that the clinic may contact me about this request at the phone number or e-mail above",
        "honeypot": "Leave this field empty",
        "submit": "Send request",
        "errors_summary": "Please check the form ({n} problems)",
        "err_name_required": "Please enter your name",
        "err_name_long": "Please use at most {max} characters",
        "err_phone_required": "Please enter your phone number",
        "err_phone_invalid": "This is not a Japanese phone number (e.g. 090-1234-5678 or 03-1234-5678)",
        "err_email_invalid": "This is not an e-mail address (e.g. hanako@example.jp)",
        "err_date_invalid": "Please choose a valid date",
        "err_date_past": "Please choose today or a later date",
        "err_date_far": "Please choose a date within {days} days",
        "err_date_missing": "Please choose a date for this time of day",
        "err_time_invalid": "Please choose the time of day again",
        "err_visit_required": "Please tell us whether this is your first visit",
        "err_reason_long": "Please use at most {max} characters",
        "err_consent_required": "We need your consent to contact you to confirm the appointment",
        "err_text_invalid": "This contains characters that cannot be used",
        "csrf_expired": "This page has expired. Please check your entries and press Send request again.",
        "done_title": "We have received your request",
        "done_number": "Request number",
        "done_body": (
            "We will call you during opening hours to confirm your appointment. "
            "Your appointment is not booked until we have spoken with you."
        ),
        "done_call": "If it is urgent, please call us",
        "done_keep": "Please mention your request number when you contact us.",
        "back": "Back to the form",
        "preview_banner": "PREVIEW (drill): patients currently see the regular booking site.",
        "chooser_title": "Where would you like to book?",
        "chooser_group_title": "Which clinic would you like to book?",
        "chooser_fallback": "Online booking is down: please call, or send the request form",
        "chooser_online": "Online booking is open",
        "error_title": "Error",
        "error_call": "You can also book by phone",
        "e400": "We could not read what was sent. Please reload the page and try again.",
        "e403_preview": "This preview link is not valid.",
        "portal_back": "Online booking works again. Please book on the booking site.",
        "portal_back_link": "Go to the booking site",
        "e404": "This page does not exist.",
        "e405": "This is not possible here.",
        "e413": "What you sent is too long. Please shorten the reason for your visit and try again.",
        "e415": "The form was sent in an unexpected format. Please reload the page and try again.",
        "e429": "Too many requests in a short time. Please wait about a minute and try again.",
        "e500": "Sorry, something went wrong on our side. Please call us to book.",
        "e503": "Sorry, we could not save your request. Please call us to book.",
        "staff_title": "Appointment requests",
        "appt_title": "Appointments (mirror copy)",
        "appt_days": "Days",
        "appt_pick": "Pick a day",
        "appt_show": "Show",
        "appt_to_requests": "Booking requests",
        "appt_synced": "last synced",
        "appt_never": "not synced yet",
        "appt_stale": "may be out of date (recent changes may be missing)",
        "appt_error": "last error",
        "appt_no_mirror": "No appointment mirror is configured.",
        "appt_unread": "{n} mails could not be read: check the templates",
        "appt_unread_when": "Received",
        "appt_unread_subject": "Subject",
        "appt_list": "{booked} booked ({cancelled} cancelled)",
        "appt_none": "The mirror holds no appointments for this day.",
        "appt_time": "Time",
        "appt_menu": "Menu",
        "appt_check": "Arrived",
        "appt_booked": "booked",
        "appt_cancelled": "cancelled",
        "appt_vanished": "cancelled (gone from the portal's list at {at})",
        "appt_requests": "Booking requests received this day ({n})",
        "appt_requests_none": "No requests received this day.",
        "appt_printed": "Printed {at}",
        "appt_link": "Appointments (mirror copy)",
        "staff_disabled": (
            "The staff page is disabled (no account from portalguard staff add, and no staff.token or "
            "staff.username/password in the config)."
        ),
        "staff_unauthorized": "Staff login required.",
        "login_title": "Staff login",
        "login_name": "Account name",
        "login_password": "Password",
        "login_submit": "Log in",
        "login_failed": "Wrong account name or password. Check them and try again.",
        "login_wait": "Too many failed logins: wait {seconds} seconds, then try again.",
        "logout": "Log out",
        "staff_signed_in": "Logged in as {name} ({role})",
        "staff_viewer_only": (
            "This account can only view. Log in with an operator account to make changes "
            "(an administrator creates one with portalguard staff add NAME --role operator)."
        ),
        "staff_state": "Booking portals",
        "staff_list": "Requests received",
        "staff_portal": "Portal",
        "staff_clinic": "Clinic",
        "staff_clinic_filter": "Clinic",
        "staff_whole_group": "Whole group",
        "staff_failover_on": "in failover",
        "staff_held": (
            "held in failover: switching too often ({count}× within an hour); "
            "back by itself at about {until} if the portal stays up"
        ),
        "staff_held_unknown": "not known",
        "staff_failover_off": "normal",
        "staff_page_on": "fallback page shown",
        "staff_page_off": "redirecting to the portal",
        "staff_verdict": "Verdict",
        "staff_since": "Since",
        "staff_filter": "Show",
        "staff_all": "all",
        "staff_none": "No requests.",
        "staff_received": "Received",
        "staff_details": "Details",
        "staff_status": "Status",
        "staff_change": "Change",
        "staff_drill": "drill",
        "staff_shown": "{n} shown (newest first, at most {limit})",
        "status_new": "new",
        "status_contacted": "contacted",
        "status_booked": "booked",
        "status_cancelled": "cancelled",
    },
}


def translator(lang: str) -> Translate:
    """``t("key", n=2)``: the string in ``lang`` with ``{n}`` filled in."""
    table = STRINGS[lang]

    def t(key: str, **values: object) -> str:
        text = table[key]
        return text.format(**values) if values else text

    return t


def choose_lang(query: str | None, accept_language: str | None) -> str:
    """``?lang=`` wins; else English only when the browser ranks it above Japanese."""
    if query in LANGS:
        return query
    weights = _accept_weights(accept_language or "")
    return "en" if weights.get("en", 0.0) > weights.get("ja", 0.0) else DEFAULT_LANG


def _accept_weights(header: str) -> dict[str, float]:
    # "en-US,en;q=0.9,ja;q=0.8" -> {"en": 1.0, "ja": 0.8}; the best q per primary tag wins.
    out: dict[str, float] = {}
    for part in header.split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if primary:
            out[primary] = max(out.get(primary, 0.0), q)
    return out


def format_time(ts: float | None, timezone: str) -> str:
    """A unix time as the clinic's local time, ``2026-11-23 10:02``."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


_WEEKDAYS_JA = "月火水木金土日"


def format_day(day: date, lang: str) -> str:
    """``12月2日(水)`` in Japanese, ``Wed 2 Dec 2026`` in English: how the front desk names a day."""
    if lang == "ja":
        return f"{day.year}年{day.month}月{day.day}日({_WEEKDAYS_JA[day.weekday()]})"
    return day.strftime("%a %-d %b %Y")
