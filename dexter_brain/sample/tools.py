"""Tool-call logs: sessions of user requests, the tool the assistant called, failures and retries.

A session is one conversation in the app: a few requests (often related: "find the file", then "move it"), the
tools the app offered in that session, and the calls. A failed call is followed in the same session by a call to
a fallback tool for the same request, sometimes after a second failure. The app changed over time: version 2
logged epoch timestamps and bare tool names, version 3 ISO timestamps, tool descriptions and richer UI context.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

from dexter_brain.sample import catalogue as C
from dexter_brain.sample import lexicon as lx
from dexter_brain.sample import noise
from dexter_brain.sample import values as V

CALLS_PER_SCALE = 6000
ARTIFACT_RATE = 0.05
"""Share of calls whose full output was also kept as an artifact (``art_*.json``)."""

TOOLS = {t.name: t for t in C.CATALOGUE}
_SIBLINGS: dict[str, set[str]] = {}
for _group in C.SIBLINGS:
    for _name in _group:
        _SIBLINGS.setdefault(_name, set()).update(n for n in _group if n != _name)

_PEOPLE = ["Mum", "Jess", "Sam P", "Priya", "Dad", "Marco", "Jo", "Tom next door", "Samantha", "Sam O", "Leo",
           "gran", "the landlord", "Kemi", "Oliver", "Rhys", "Dr Clarke"]
_FILES = ["invoice_0423.pdf", "Q3 report.docx", "tax-2023-24.xlsx", "passport scan.pdf", "CV_Alex_Morgan.pdf",
          "bakery-logo-final-v3.ai", "tenancy agreement.pdf", "wedding speech.docx", "holiday photos.zip",
          "budget.numbers", "notes.txt", "receipts_march.pdf", "site-backup.sql", "moodboard.fig", "P60 2023.pdf",
          "kitchen quote.pdf", "insurance renewal.pdf", "menu_draft.docx", "contract_signed.pdf", "readme.md"]
_FOLDERS = ["Downloads", "Documents", "Desktop", "Documents/Clients/Maple Bakery", "Pictures/2024",
            "Documents/Tax", "Projects/northwind", "Documents/House", "iCloud Drive/Admin", "Projects/portfolio"]
_TOPICS = ["kitchen quote", "tax return", "wedding", "Lisbon", "bakery website", "boiler", "candle suppliers",
           "car insurance", "invoice", "rent", "NAS backup", "logo", "pricing", "birthday party", "dentist"]
_QUERIES = ["best time to visit Lisbon", "how to descale a kettle", "shopify vs woocommerce fees",
            "is Monday a bank holiday", "how long to boil an egg", "UK tax year end date", "vat threshold uk 2024",
            "border terrier grooming tips", "how to reset eero router", "cheap flights to porto",
            "what is a break clause", "how to remove mould from silicone", "synology raid rebuild time",
            "best budget standing desk", "when do the clocks change"]
_URLS = ["https://www.bbc.co.uk/news", "https://gov.uk/self-assessment-tax-returns", "https://maplebakery.co.uk",
         "https://northwindcandles.com/products", "https://www.theguardian.com/uk", "https://news.ycombinator.com",
         "https://www.rightmove.co.uk/properties/1402", "https://shopify.dev/docs/themes",
         "https://alexmorgan.design", "https://www.metoffice.gov.uk"]
_SITES = ["the BBC", "Rightmove", "my bank", "the Shopify admin", "YouTube", "Gmail", "the council website"]
_WHEN = ["today", "tomorrow", "this weekend", "on Friday", "next week", "tonight", "tomorrow morning", "on Saturday",
         "at the weekend", "this afternoon"]
_TODO = ["call mum", "pay the rent", "renew the car tax", "book the MOT", "send the invoice", "water the plants",
         "take the bins out", "order Biscuit's food", "cancel Netflix", "back up the laptop", "buy a birthday card",
         "chase the plumber", "move the washing"]
_EVENTS = ["dentist", "call with Priya", "haircut", "bakery site review", "yoga", "lunch with Jess", "MOT",
           "team standup", "parents evening", "viewing at Maple Street", "gym session", "drinks with Sam"]
_APPS = ["Figma", "Spotify", "Slack", "Chrome", "Zoom", "Photoshop", "VS Code", "Notion", "Excel", "Docker",
         "Teams", "Hue", "Hive", "the Barclays app", "Preview"]
_MSGS = ["running 10 mins late", "on my way", "can you call me back", "happy birthday!!", "are we still on for "
         "tonight", "I've sent the invoice", "can you feed Biscuit tomorrow", "got the tickets", "see you at 7"]

# The app a fallback opens when a tool fails ("couldn't reach the lights, opening the Hue app").
_APP_FOR = {"smart_home.lights": "Hue", "smart_home.set_thermostat": "Hive", "system_ops.get_info": "System Settings",
            "system_ops.disk_usage": "Disk Utility", "system_ops.list_processes": "Activity Monitor",
            "printer.print_document": "Preview", "media.play_music": "Spotify",
            "finance.list_transactions": "the Barclays app", "system_ops.kill_process": "Activity Monitor"}

_CURRENCY = {"GBP": "GBP", "pounds": "GBP", "EUR": "EUR", "euros": "EUR", "USD": "USD", "dollars": "USD",
             "JPY": "JPY"}

FILLERS = {
    "person": lambda r, s: "Snappy Snaps" if s.get("_failed") == "printer.print_document" else r.choice(_PEOPLE),
    "file": lambda r, s: r.choice(_FILES),
    "file2": lambda r, s: r.choice(_FILES).replace(".", "_old."),
    "stem": lambda r, s: s["file"].rsplit(".", 1)[0] if "file" in s else r.choice(_TOPICS),
    "path": lambda r, s: f"~/{r.choice(_FOLDERS)}/{s['file']}",
    "folder": lambda r, s: r.choice(_FOLDERS),
    "topic": lambda r, s: s["stem"] if "file" in s else s["doc_title"] if "doc_title" in s else r.choice(_TOPICS),
    "snippet": lambda r, s: r.choice(["buy more oat milk", "ideas for the candle newsletter", "wifi code 4471",
                                      "call the accountant back", "Jess's train gets in at 6:40"]),
    "doc_title": lambda r, s: r.choice(["Kitchen budget", "Wedding speech", "Lisbon itinerary", "Client onboarding",
                                        "Meeting notes", "Q3 plan"]),
    "scan": lambda r, s: r.choice(["IMG_4471.HEIC", "receipt.jpg", "letter_from_HMRC.pdf", "scan_0012.pdf"]),
    "query": lambda r, s: s["_task"] if "_task" in s else r.choice(_QUERIES),
    "url": lambda r, s: "https://fast.com" if s.get("_failed") == "network.speed_test" else r.choice(_URLS),
    "site": lambda r, s: r.choice(_SITES),
    "news": lambda r, s: r.choice(["the election", "interest rates", "the train strike", "Leeds United", "AI",
                                   "the heatwave", "house prices", "Apple"]),
    "city": lambda r, s: r.choice([c for c, _ in lx.CITIES] + lx.TRAVEL_CITIES[:6]),
    "when": lambda r, s: f"{s['day']} {s.get('time', '')}".strip() if "day" in s else r.choice(_WHEN),
    "day": lambda r, s: s["when"] if "when" in s else r.choice(["Monday", "Tuesday", "Wed", "Thursday", "Friday",
                                                                   "the 14th", "tomorrow"]),
    "time": lambda r, s: V.clock(r),
    "place": lambda r, s: r.choice(["Mum's", "the office", "Leeds station", "Heathrow T2", "Bella Napoli",
                                    "the vets", "IKEA Wembley", "Jess's"]),
    "mode": lambda r, s: r.choice(["car", "train", "bike", "walking", "bus"]),
    "place_kind": lambda r, s: r.choice(["coffee shop", "pharmacy", "cash machine", "petrol station", "vet",
                                         "sushi place", "hardware shop", "post office"]),
    "area": lambda r, s: r.choice(["Moorgate", "Headingley", "here", "the station", "Harrogate", "Shoreditch"]),
    "event": lambda r, s: s["todo"] if "todo" in s else r.choice(_EVENTS),
    "todo": lambda r, s: s["event"] if "event" in s else r.choice(_TODO),
    "minutes": lambda r, s: str(r.choice([3, 5, 10, 12, 15, 20, 25, 30, 45])),
    "email_subject": lambda r, s: r.choice(["about the invoice", "re: Saturday", "the photos", "quick question"]),
    "msg": lambda r, s: f"here's the {s['doc_title']}" if "doc_title" in s else r.choice(_MSGS),
    "volume": lambda r, s: r.choice(["Macintosh HD", "the external drive", "the NAS", "C:"]),
    "app": lambda r, s: _APP_FOR.get(s.get("_failed", ""), None) or r.choice(_APPS),
    "song": lambda r, s: r.choice(["Dreams", "Heroes", "Running Up That Hill", "Juicy", "Bloom"]),
    "artist": lambda r, s: r.choice(["Fleetwood Mac", "Bowie", "Kate Bush", "Biggie", "The Paper Kites"]),
    "genre": lambda r, s: r.choice(["jazz", "lo-fi", "80s", "something chill", "classical", "drum and bass"]),
    "playlist": lambda r, s: r.choice(["Focus", "Running", "Sunday morning", "Discover Weekly"]),
    "podcast": lambda r, s: r.choice(["Rest Is History", "Desert Island Discs", "The Daily"]),
    "pct": lambda r, s: str(r.choice([10, 20, 30, 40, 50, 60, 80])),
    "room": lambda r, s: r.choice(["kitchen", "living room", "bedroom", "hall", "office", "landing"]),
    "temp": lambda r, s: str(r.choice([17, 18, 19, 20, 21, 22])),
    "merchant": lambda r, s: r.choice(["Tesco", "Amazon", "Uber", "Pret", "Deliveroo", "Trainline"]),
    "category": lambda r, s: r.choice(["groceries", "eating out", "transport", "subscriptions"]),
    "ticker": lambda r, s: r.choice(["AAPL", "TSLA", "Shopify", "NVDA", "Tesco", "VUSA"]),
    "amount": lambda r, s: str(r.choice([20, 50, 120, 250, 1000, 35.5])),
    "cur1": lambda r, s: r.choice(["GBP", "pounds", "EUR", "USD"]),
    "cur2": lambda r, s: r.choice([c for c in ["EUR", "euros", "USD", "JPY", "dollars", "GBP"]
                                   if _CURRENCY[c] != _CURRENCY[s["cur1"]]]),
    "expr": lambda r, s: r.choice(["17.5% of 2340", "1299 / 12", "(45 + 38) * 3", "sqrt(2025)", "850*0.8",
                                   "£62 split 4 ways"]),
    "phrase": lambda r, s: r.choice(["where is the station", "two coffees please", "thank you very much",
                                     "do you have gluten free bread", "the bill please"]),
    "lang": lambda r, s: r.choice(["Portuguese", "Spanish", "Italian", "French", "Japanese"]),
    "code": lambda r, s: r.choice(["print(sum(range(10)))", "len('dexter')", "[x*x for x in range(5)]",
                                   "import math; math.ceil(7/2)"]),
    "tracking": lambda r, s: r.choice(["JD0002212345678", "1Z999AA10123456784", "RM123456789GB", "H00YJA0012345"]),
    "product": lambda r, s: r.choice(["desk lamp", "air fryer", "dog bed", "monitor arm", "running shoes"]),
    "fact": lambda r, s: r.choice(["the spare key is with Tom", "Jess's flight lands at 6", "I parked on level 3",
                                   "the gas meter is under the stairs"]),
    "dest": lambda r, s: r.choice(lx.TRAVEL_CITIES),
    "month": lambda r, s: r.choice(lx.MONTHS),
    "nights": lambda r, s: str(r.randint(1, 7)),
    "n": lambda r, s: str(r.choice([1, 2, 2, 3, 5])),
}


class Slots(dict):
    """Slot values, drawn the first time a template or an argument builder asks for one."""

    def __init__(self, rng: random.Random):
        super().__init__()
        self.r = rng

    def __missing__(self, key: str) -> str:
        value = FILLERS[key](self.r, self)
        self[key] = value
        return value


def catalogue() -> list[dict]:
    """Every tool the assistant knows: ``{name, description}``."""
    return [{"name": t.name, "description": t.description} for t in C.CATALOGUE]


def tool_sessions(seed: int, scale: float) -> Iterator[tuple[list[dict], list[dict]]]:
    """Yield ``(log lines, artifacts)`` per session, in time order, until about ``CALLS_PER_SCALE * scale`` lines."""
    r = random.Random(f"{seed}:tools")
    target = round(CALLS_PER_SCALE * scale)
    expected_sessions = max(1, target / 2.3)
    step = timedelta(days=V.SPAN_DAYS) / expected_sessions
    names, weights = [t.name for t in C.CATALOGUE], [t.weight for t in C.CATALOGUE]
    made, k = 0, 0
    while made < target:
        start = V.BASE_TIME + step * k + timedelta(seconds=r.uniform(0, step.total_seconds()))
        if start.hour < 7:  # the user is asleep
            start += timedelta(hours=7 - start.hour + r.uniform(0, 2))
        k += 1
        lines, artifacts = _session(r, start, names, weights)
        made += len(lines)
        yield lines, artifacts


def _plan(r: random.Random, names: list[str], weights: list[float]) -> list[str]:
    tools = [r.choices(names, weights=weights)[0]]
    while r.random() < 0.55 and len(tools) < 6:
        prev = tools[-1]
        if r.random() < 0.45 and _SIBLINGS.get(prev):
            tools.append(r.choice(sorted(_SIBLINGS[prev])))
        else:
            tools.append(r.choices(names, weights=weights)[0])
    return tools


def _offered(r: random.Random, planned: list[str]) -> list[str]:
    """The tools the app offered in this session: the ones used, their fallbacks, look-alikes, and others."""
    need = set(planned)
    for name in planned:
        need.update(TOOLS[name].fallbacks)
        for fb in TOOLS[name].fallbacks:
            need.update(TOOLS[fb].fallbacks)
    extra = sorted({s for n in planned for s in _SIBLINGS.get(n, ())} - need)
    r.shuffle(extra)
    size = max(len(need), r.randint(5, 20))
    chosen = sorted(need) + extra[: max(0, min(size - len(need), r.randint(1, 4)))]
    others = sorted(set(TOOLS) - set(chosen))
    r.shuffle(others)
    chosen += others[: max(0, size - len(chosen))]
    r.shuffle(chosen)
    return chosen


def _session(r: random.Random, start: datetime, names: list[str], weights: list[float]):
    planned = _plan(r, names, weights)
    offered = _offered(r, planned)
    sid = str(uuid.UUID(int=r.getrandbits(128), version=4))
    progress = (start - V.BASE_TIME).days / V.SPAN_DAYS
    version = f"2.{r.randint(6, 9)}.{r.randint(0, 4)}" if progress < 0.35 else f"3.{r.randint(0, 4)}.{r.randint(0, 9)}"
    is_v3 = version.startswith("3")
    listing = _listing(r, offered, is_v3)
    device = r.choices(["MacBook Pro 14", "iPhone 15", "ThinkPad X1 Carbon", "iPad"], weights=[6, 4, 1.5, 1])[0]
    t = start
    lines, artifacts = [], []
    for name in planned:
        slots = Slots(r)
        tool = TOOLS[name]
        task = noise.humanize(r, r.choice(tool.tasks).format_map(slots), question=False, lower_rate=0.5,
                              typo_rate=0.1, shorthand_rate=0.08)
        slots["_task"] = task
        ui = _ui(r, tool, slots, version, device, is_v3)
        attempts = _attempts(r, tool, offered, slots)
        for n, (attempt, error) in enumerate(attempts, start=1):
            t += timedelta(seconds=r.randint(2, 40) if n > 1 else r.randint(8, 600))
            line = {"ts": _ts(r, t, is_v3), "conversation_id": sid, "task": task,
                    "ui_context": dict(ui, attempt=n) if n > 1 and is_v3 else ui,
                    "available_tools": listing, "tool": attempt.name, "args": attempt.args(slots),
                    "status": "error" if error else "success"}
            if error:
                line["error"] = error
            lines.append(line)
            if r.random() < ARTIFACT_RATE:
                artifacts.append(_artifact(r, line, attempt, slots, t))
    return lines, artifacts


def _listing(r: random.Random, offered: list[str], is_v3: bool) -> list:
    style = r.choices(["names", "described", "mixed"], weights=[1, 0.05, 0.05] if not is_v3 else [0.15, 0.6, 0.25])[0]
    out = []
    for name in offered:
        tool = TOOLS[name]
        if style == "names" or (style == "mixed" and r.random() < 0.4):
            out.append(name)
        elif r.random() < tool.describe_rate:
            out.append({"name": name, "description": tool.description})
        else:
            out.append({"name": name})
    return out


def _ui(r: random.Random, tool: C.Tool, slots: Slots, version: str, device: str, is_v3: bool) -> dict:
    screen = r.choice(tool.screens) if r.random() < 0.7 else r.choice(["chat", "home", "chat", "settings", "files"])
    ui = {"screen": screen}
    if not is_v3:
        return ui if r.random() < 0.8 else {}
    ui["app_version"] = version
    ui["device"] = device
    if screen == "files" and "path" in slots:
        ui["selected"] = slots["path"]
    elif screen == "calendar" and "event" in slots:
        ui["selected_event"] = slots["event"]
    elif screen in ("contacts", "messages") and "person" in slots:
        ui["selected_contact"] = slots["person"]
    elif screen == "browser":
        ui["tab_url"] = slots["url"] if "url" in slots else r.choice(_URLS)
    if r.random() < 0.3:
        ui["locale"] = "en-GB"
    return ui


def _attempts(r: random.Random, tool: C.Tool, offered: list[str], slots: Slots) -> list[tuple[C.Tool, str | None]]:
    """The calls made for one request: a failure is retried with one of the first tool's fallbacks, and if that
    fails too, with another of them."""
    fallbacks = [TOOLS[f] for f in tool.fallbacks if f in offered]
    r.shuffle(fallbacks)
    if not fallbacks or not (tool.never_works or r.random() < tool.fail_rate):
        return [(tool, None)]
    slots["_failed"] = tool.name
    out = [(tool, _error(r, tool, slots))]
    if len(fallbacks) > 1 and r.random() < 0.2:
        out.append((fallbacks[1], _error(r, fallbacks[1], slots)))
    out.append((fallbacks[0], None))
    return out


def _error(r: random.Random, tool: C.Tool, slots: Slots) -> str:
    message = r.choice(C.ERRORS[r.choice(tool.errors)])
    return message.format(path=slots["path"] if "path" in message else "", folder=r.choice(_FOLDERS),
                          when=slots.get("when", "next thurs"), app=slots.get("app", "Figma"))


def _ts(r: random.Random, t: datetime, is_v3: bool):
    epoch = (t - datetime(1970, 1, 1)).total_seconds()
    if not is_v3:
        return round(epoch + r.random(), 3) if r.random() < 0.6 else int(epoch)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + r.choice(["Z", "Z", ".%03dZ" % r.randint(0, 999), "+00:00"])


def _artifact(r: random.Random, line: dict, tool: C.Tool, slots: Slots, t: datetime) -> dict:
    ok = line["status"] == "success"
    slow = "timed out" in str(line.get("error", "")).lower() or "timeout" in str(line.get("error", "")).lower()
    art = {"id": f"art_{r.getrandbits(48):012x}", "ts": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
           "conversation_id": line["conversation_id"]}
    if r.random() < 0.8:
        art["task"] = line["task"]
    art.update({"tool": tool.name, "args": line["args"], "status": line["status"],
                "error": line.get("error"), "output": tool.output(r, slots) if ok else None,
                "duration_ms": 30000 + r.randint(0, 400) if slow else int(r.lognormvariate(5.8, 0.9))})
    return art
