"""What the assistant stores about each type of entity, and how people write and ask about it (data).

A ``Kind`` is one sort of fact (a person's address, a laptop's price, a car's service record). It carries several
wordings of the stored fact, several ways to ask for it, nouns for short follow-ups ("and her address?") and the
reply the assistant gives. Event kinds (``distinct`` set) repeat: one fact per service, gift or vet visit, told
apart by the ``distinct`` slot, which their questions name.

Template fields. Facts: ``{E}`` the entity as written in the note plus the value slots. Questions: ``{e}`` (as
subject), ``{eo}`` (as object), ``{ep}`` (possessive): a name or alias, or "she"/"her"/"it" in a follow-up;
``{em}`` the name used as a modifier ("the {em} password"), never replaced by a pronoun. Every question names its
entity, so it stays unambiguous however many entities the world has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Callable

from dexter_brain.sample import lexicon as lx
from dexter_brain.sample import values as V


@dataclass(frozen=True)
class Kind:
    key: str
    types: tuple[str, ...]
    facts: tuple[str, ...]
    value: Callable
    asks: tuple[str, ...] = ()
    nouns: tuple[str, ...] = ()
    say: tuple[str, ...] = ()
    subs: tuple[str, ...] | None = None
    topic: str = ""
    p: float = 0.85
    distinct: str | None = None
    latest: tuple[str, ...] = ()
    cmp: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    tell: tuple[str, ...] = ()
    weight: float = 1.0
    obj: str = "v"
    cap: int = 10

    @property
    def is_event(self) -> bool:
        return self.distinct is not None


def K(key, types, facts, value, **kw) -> Kind:
    for f in ("asks", "nouns", "say", "latest", "tell", "facts"):
        if f in kw:
            kw[f] = tuple(kw[f])
    return Kind(key, tuple(types.split()), tuple(facts), value, **kw)


def _scope(e) -> str:
    return {"home": "home", "admin": "admin"}.get(e.sub, "web")


def _issue_group(e) -> str:
    return {"laptop": "computer", "phone": "computer", "tablet": "computer", "router": "network",
            "nas": "network"}.get(e.sub, "other")


_NUMBERS = ["no", "one", "two", "three", "four"]
SOCIAL = ("family", "friend", "colleague", "manager", "client", "neighbour")
"""People the user has a personal relationship with (not their GP, accountant or plumber)."""
_OS = {("laptop", True): ["macOS Sonoma 14.4", "macOS Ventura 13.6", "macOS Sonoma 14.2"],
       ("laptop", False): ["Windows 11 23H2", "Windows 10 22H2", "Ubuntu 22.04"],
       ("phone", True): ["iOS 17.4", "iOS 17.1", "iOS 16.7"], ("phone", False): ["Android 14", "Android 13"],
       ("tablet", True): ["iPadOS 17.3"], ("tablet", False): ["Android 13"], ("nas", False): ["DSM 7.2", "DSM 7.1.1"]}


_ACCOUNT_USE = {
    "bank": ["main one for bills", "salary goes in here", "joint with Jess for the holiday fund",
             "day-to-day spending"],
    "warranty": ["extended warranty for Dad's Civic", "registered the car for the 5-year warranty"],
    "government": ["self assessment and tax code", "for the UTR and tax returns"],
    "cloud": ["hosting for client sites", "S3 backups and the bakery app API"],
    "payments": ["for eBay and client payments", "linked to the Barclays card"],
    "utility": ["energy for Oak Lane", "water bill for the flat"], "shopping": ["selling old gear"],
    "investments": ["stocks and shares ISA", "monthly £200 into a global tracker"], "loyalty": ["Sainsbury's points"],
}
_DOCUMENT_WHAT = {
    "insurance": ["buildings and contents", "fully comp, named driver Jess", "covers accidents and illness"],
    "id": ["photo ID", "original plus a scan in Drive"], "contract": ["12-month AST", "rolling monthly contract"],
    "certificate": ["original in the fireproof box", "copy needed for the letting agent"],
}


def _occasion(r, e) -> tuple:
    """An occasion and the day a present for it was given (Christmas in December, Mother's Day in March...)."""
    occ = r.choice(lx.OCCASIONS[e.gender or "f"])
    year = r.choice([2023, 2023, 2024]) if occ != "Christmas" else 2023
    month, day = {"Christmas": (12, r.randint(20, 25)), "Mother's Day": (3, r.randint(10, 31)),
                  "Father's Day": (6, r.randint(15, 21))}.get(occ, (r.randint(1, 8), r.randint(1, 28)))
    return occ, date(year, month, day)


def _terms(e) -> list[str]:
    name = e.name.lower()
    if "tenancy" in name or "lease" in name:
        return ["6 months notice either side", "break clause after 12 months", "deposit £950 in the DPS",
                "pets allowed with permission", "no subletting"]
    if "phone" in name:
        return ["24 months, upgrade allowed from month 18", "30 days notice after the minimum term"]
    if "gym" in name:
        return ["12-month minimum, then 30 days notice", "freeze allowed up to 3 months a year"]
    return ["30-day payment terms", "either side can end it with 4 weeks notice", "IP transfers on final payment"]


def _trip(r, e) -> tuple:
    """A trip's first and last day, drawn once per trip so that bookings fall inside it."""
    if "dates" not in e.memo:
        start = V.day(r, 300, 620)
        e.memo["dates"] = (start, V.BASE_DATE.fromordinal(start.toordinal() + r.randint(2, 9)))
    return e.memo["dates"]


def _city(e) -> tuple[str, str] | None:
    return next((c for c in lx.CITIES if c[0] == e.attrs.get("city")), None)


def _age_range(e) -> tuple[int, int]:
    return {"mother": (58, 68), "father": (60, 70), "grandmother": (82, 90), "nephew": (6, 11), "sister": (27, 34),
            "sister's fiance": (29, 36)}.get(e.attrs.get("relation", ""), (24, 58))


CHEAPER = ("v", "min", ("which one is cheaper", "which was cheaper", "which one cost less", "which is the cheapest"))
DEARER = ("v", "max", ("which one was more expensive", "which cost more", "which is the priciest"))
OLDER = ("v", "min", ("which one is older", "which did I get first", "which is the older one"))
NEWER = ("v", "max", ("which one is newer", "which one did I buy most recently", "which is newer"))
SOONER = ("v", "min", ("which one is due first", "which comes up first", "which one is sooner"))

SELF = [
    K("blood_type", "self", ["Alex's blood type is {v}.", "Blood group: {v}", "User is {v} (blood type)."],
      lambda r, e: {"v": r.choice(["O negative", "O positive", "A positive", "B negative", "AB positive"])},
      asks=["what's my blood type", "what blood group am I", "do you know my blood type"], nouns=["blood type"],
      say=["You're {v}."], topic="health", tell=["my blood type is {v}, can you remember that"]),
    K("allergy", "self", ["Alex is allergic to {v} - mention it when booking restaurants.", "Allergy: {v}.",
                          "User allergic to {v} (mild)."],
      lambda r, e: {"v": r.choice(["penicillin", "cashews", "cats (mild)", "penicillin and plasters", "kiwi"])},
      asks=["what am I allergic to", "do I have any allergies", "remind me what my allergies are"],
      nouns=["allergies"], say=["You're allergic to {v}."], topic="health"),
    K("shoe_size", "self", ["Shoe size UK {v} (EU {eu}).", "Alex wears a size {v} shoe.", "Shoes: {v} UK"],
      lambda r, e: (lambda s: {"v": s, "eu": s + 33})(r.choice([5, 6, 7, 8])),
      asks=["what size shoes do I wear", "what's my shoe size", "my shoe size in EU"], nouns=["shoe size"],
      say=["UK {v}, which is EU {eu}."], topic="shopping"),
    K("coffee", "self", ["Usual coffee order: {v}.", "Alex takes coffee as a {v}.", "Coffee - {v}, no sugar"],
      lambda r, e: {"v": r.choice(["oat flat white", "double espresso", "oat latte, extra hot", "cortado"])},
      asks=["what's my usual coffee order", "how do I take my coffee"], nouns=["coffee order"],
      say=["A {v}."], topic="personal"),
    K("seat", "self", ["Prefers {v} seats on flights.", "Flights: always book {v} seat", "Alex likes the {v} seat."],
      lambda r, e: {"v": r.choice(["aisle", "window"])},
      asks=["do I prefer window or aisle", "what seat do I like on planes", "which seat should I book for me"],
      nouns=["seat preference"], say=["You prefer the {v}."], topic="travel"),
    K("ni_number", "self", ["National Insurance number ends {v}.", "NI no. ending {v} (full number in the passport "
                            "wallet)", "Alex's NI number finishes with {v}"],
      lambda r, e: {"v": V.digits(r, 2) + " " + r.choice("ABCD")},
      asks=["what are the last digits of my NI number", "my national insurance number?", "what's my NI number"],
      nouns=["NI number", "national insurance number"], say=["It ends {v}."], topic="admin"),
    K("job", "self", ["Alex works freelance as a {v} since {d}.", "Job: {v} (freelance), own business since {d}"],
      lambda r, e: {"v": r.choice(["product designer", "brand designer", "UX designer"]), "d": V.day(r, 0, 60)},
      asks=["what's my job title on forms", "when did I go freelance"], nouns=["job title"],
      say=["You're a freelance {v}, since {d}."], topic="work", p=1.0),
    K("working_hours", "self", ["Working hours {v}; no calls before {tm}.",
                                "Alex prefers meetings after {tm}, works {v}"],
      lambda r, e: {"v": r.choice(["9-5:30 Mon-Thu", "8:30-4 with Fridays off", "10-6"]),
                    "tm": r.choice(["10am", "9:30", "11am"])},
      asks=["what are my working hours", "when do I like meetings to start", "what time can people call me from"],
      nouns=["working hours"], say=["{v}, and no calls before {tm}."], topic="work"),
    K("diet", "self", ["Cutting down on {v} since {d}.", "Alex is avoiding {v} at the moment (from {d})."],
      lambda r, e: {"v": r.choice(["caffeine after 2pm", "alcohol on weeknights", "sugar", "red meat"]),
                    "d": V.day(r, 200, 500)},
      asks=["what am I cutting down on at the moment", "what did I say I'm avoiding"], topic="health",
      say=["You're cutting down on {v} (since {d})."]),
    K("clothes", "self", ["Clothes: {v} tops, jeans {w}.", "Alex wears a {v} in shirts and {w} jeans"],
      lambda r, e: {"v": r.choice(["S", "M", "size 10", "size 12"]), "w": r.choice(["W28 L30", "W30 L32", "10R"])},
      asks=["what size tops do I wear", "what size jeans should I order"], nouns=["clothes size"],
      say=["{v} tops and {w} jeans."], topic="shopping"),
    K("book", "self", ["Want to read {item} - recommended by {who}.", "Book tip from {who}: {item}",
                       "Reading list: {item} ({who} says it's great)"],
      lambda r, e: {"item": r.choice(lx.BOOKS), "who": r.choice(["Jess", "Sam P", "Priya", "Marco", "gran"])},
      asks=["who recommended {item}", "was {item} on my reading list"], distinct="item", topic="personal",
      say=["{who} recommended {item}."], obj="item"),
    K("goal", "self", ["Goal for {year}: {v}.", "{year} resolution - {v}", "Alex wants to {v} in {year}"],
      lambda r, e: (lambda y: {"year": y, "date": date(y, 1, r.randint(1, 14)), "v": r.choice([
          "run a half marathon", "save £10k for the flat deposit", "learn Portuguese basics", "read 20 books",
          "take a proper two-week holiday", "get the portfolio site relaunched"])})(r.choice([2023, 2024])),
      asks=["what were my goals for {year}", "what did I want to do in {year}"], distinct="year", topic="personal",
      say=["For {year} you wanted to {v}."]),
    K("medical", "self", ["{what} on {date} at {where}.", "Had {what} {date} ({where})", "{what}: {date}, {where}"],
      lambda r, e: {"what": r.choice(["Flu jab", "Covid booster", "Blood test", "Eye test", "Dental check-up",
                                      "Physio session", "Smear test"]), "date": V.day(r),
                    "where": r.choice(["Boots", "the surgery", "Riverside Dental", "City Physio"])},
      asks=["when did I last have a {what}", "when was my {what}"], distinct="what", topic="health",
      say=["Your {what} was on {date} at {where}."], obj="date", cap=7),
    K("purchase", "self", ["Ordered {item} from {shop} on {date} ({v}).", "Bought {item} - {v}, {shop}, {date}",
                           "{item}: {shop}, {v}"],
      lambda r, e: {"item": r.choice(lx.PURCHASES), "shop": r.choice(lx.STORES),
                    "date": V.day(r), "v": V.money(r, 6, 420, step=0.01)},
      asks=["when did I order the {item}", "how much was the {item}", "where did I buy the {item}"],
      distinct="item", say=["{item}: {v} from {shop} on {date}."], topic="shopping", weight=3.0, cap=35),
    K("opinion", "self", ["Watched {item} - {v}.", "{item}: {v}", "Alex thought {item} was {v}"],
      lambda r, e: {"item": r.choice(lx.SHOWS), "v": r.choice(["brilliant", "overrated", "fine, a bit long",
                                                               "couldn't finish it", "10/10", "meh"])},
      asks=["what did I think of {item}", "did I like {item}"], distinct="item", say=["You said: {v}."],
      topic="personal", weight=1.5, cap=15),
    K("idea", "self", ["Idea: {v}.", "Idea ({topic}) - {v}", "Note to self: {v}"],
      lambda r, e: (lambda i: {"topic": i[0], "v": i[1]})(r.choice(lx.IDEAS)),
      asks=["what was my idea about {topic}", "remind me of that {topic} idea"], distinct="topic",
      say=["You noted: {v}."], topic="personal", cap=15),
]

PERSON = [
    K("identity", "person", ["{E} is my {rel}.", "{E}: {rel}, lives in {city}", "{E} - {rel} ({city})"],
      lambda r, e: {"rel": e.attrs.get("relation", "friend"), "city": e.attrs.get("city") or r.choice(lx.CITIES)[0]},
      asks=["who is {e}", "remind me who {e} is", "how do I know {eo}"], say=["{E} is your {rel}, in {city}."],
      p=1.0, obj="rel"),
    K("birthday", "person", ["{E}'s birthday is {v}.", "{E} was born {v}", "Bday: {E}, {v}", "Remember {E}'s birthday"
                             " - {v}"],
      lambda r, e: {"v": V.birth_date(r, *_age_range(e))},
      asks=["when is {ep} birthday", "when was {e} born", "what's {ep} date of birth"],
      nouns=["birthday", "bday", "date of birth"], say=["{E}'s birthday is {v}."], topic="family", p=0.9,
      cmp=(("v", "min", ("who is older", "which one is older")), ("v", "max", ("who is the youngest",)))),
    K("phone", "person", ["{E}'s mobile: {v}", "{E} - mob {v}", "Phone number for {E} is {v}", "{E} new number {v}"],
      lambda r, e: {"v": V.phone(r)},
      asks=["what's {ep} number", "what is {ep} phone number", "do you have a number for {eo}", "how do I call {eo}"],
      nouns=["number", "phone number", "mobile"], say=["{E}'s number is {v}."], p=0.9),
    K("email", "person", ["{E}'s email is {v}", "Email for {E}: {v}", "{E} uses {v} for email"],
      lambda r, e: {"v": V.email(r, e.first, e.last)},
      asks=["what's {ep} email", "what email should I use for {eo}", "{ep} email address"],
      nouns=["email", "email address"], say=["{E}'s email is {v}."], p=0.8),
    K("address", "person", ["{E} lives at {v}.", "{E}'s address: {v}", "New address for {E} - {v}"],
      lambda r, e: {"v": V.address(r, _city(e))},
      asks=["where does {e} live", "what's {ep} address", "what address do I send {ep} card to"],
      nouns=["address", "home address", "postcode"], say=["{E} lives at {v}."], p=0.75),
    K("partner", "person", ["{E}'s partner is {v}.", "{E} is married to {v}", "{E} + {v} (partner)"],
      lambda r, e: {"v": e.attrs.get("partner") or V.person_name(r)[0]},
      asks=["what's {ep} partner called", "who is {e} with", "what's the name of {ep} other half"],
      nouns=["partner"], say=["{v}."], topic="family", p=0.5, subs=SOCIAL),
    K("kids", "person", ["{E} has {n}: {v}.", "{E}'s children - {v}", "Kids: {v} ({E})"],
      lambda r, e: (lambda ks: {"n": _NUMBERS[len(ks)] + (" kid" if len(ks) == 1 else " kids"), "v": ks})(
          e.attrs.get("kids") or r.sample(lx.FIRST_NAMES_F + lx.FIRST_NAMES_M, r.randint(1, 3))),
      asks=["what are {ep} kids called", "does {e} have children", "how many kids has {e} got"],
      nouns=["kids", "children"], say=["{E} has {n}: {v}."], topic="family", p=0.4, subs=SOCIAL),
    K("work", "person", ["{E} works at {v} as a {title}.", "{E} - {title} at {v}", "{E} moved jobs, now {title} @ {v}"],
      lambda r, e: {"v": r.choice(lx.COMPANIES), "title": r.choice([
          "project manager", "nurse", "solicitor", "developer", "teacher", "accountant", "product owner", "chef"])},
      asks=["where does {e} work", "what does {e} do for a living", "what's {ep} job"],
      nouns=["job", "work"], say=["{E} is a {title} at {v}."], p=0.7),
    K("diet", "person", ["{E} is {v}.", "{E} doesn't eat {food}", "Note for dinners: {E} - {v}, no {food}"],
      lambda r, e: {"v": r.choice(["vegetarian", "vegan", "pescatarian", "gluten free", "fussy"]),
                    "food": r.choice(lx.FOODS)},
      asks=["does {e} have any dietary requirements", "what can't {e} eat", "is {e} veggie"],
      nouns=["dietary requirements"], say=["{E} is {v} and doesn't eat {food}."], p=0.6, subs=SOCIAL),
    K("likes", "person", ["{E} loves {v}.", "{E} is into {v} at the moment",
                          "Gift idea for {E}: something {v}-related"],
      lambda r, e: {"v": r.choice(lx.LIKES)},
      asks=["what should I get {eo} for {ep} birthday", "what is {e} into", "any gift ideas for {eo}"],
      nouns=["gift ideas", "hobbies"], say=["{E} is into {v}."], p=0.7, subs=SOCIAL),
    K("gift", "person", ["Gave {E} {item} for {occ} {year}.", "{occ} {year}: got {E} {item}", "Present for {E} ({occ}"
                         " {year}) - {item}, {cost}"],
      lambda r, e: (lambda o, d: {"item": r.choice(lx.KID_GIFTS if e.attrs.get("child") else lx.GIFTS), "occ": o,
                                  "year": d.year, "occyear": f"{o} {d.year}",
                                  "cost": V.money(r, 15, 180), "date": d})(*_occasion(r, e)),
      asks=["what did I get {eo} for {occ} {year}", "what present did I give {eo} for {occ} in {year}"],
      distinct="occyear", say=["You gave {E} {item} for {occ} {year}."], topic="shopping", obj="item", subs=SOCIAL),
    K("meetup", "person", ["Lunch with {E} at {where} on {date}. {note}", "Saw {E} {date} ({where}) - {note}",
                           "Met {E} for coffee {date} at {where}"],
      lambda r, e: {"date": V.day(r), "where": r.choice(lx.MEET_PLACES),
                    "note": r.choice(["Owe them a coffee.", "Talked about the wedding.", "Fine, a bit stressed.",
                                      "Recommended a plumber.", "", "Promised to send the photos."])},
      asks=["where did I meet {eo} on {date}", "what did {e} and I do on {date}"], distinct="date",
      latest=["when did I last see {eo}", "when did I last catch up with {eo}"],
      say=["You met {E} at {where} on {date}."], obj="where", cap=28, subs=SOCIAL),
    K("loan", "person", ["Lent {E} {v} for {item} on {date}.", "{E} owes me {v} ({item}, {date})",
                         "{E} borrowed {v} - {item}"],
      lambda r, e: {"v": V.money(r, 10, 400, step=5), "item": r.choice([
          "concert tickets", "the taxi", "the Airbnb deposit", "dinner", "train tickets", "the birthday present"]),
                    "date": V.day(r)},
      asks=["how much does {e} owe me for {item}", "how much did I lend {eo} for {item}"], distinct="item",
      say=["{E} owes you {v} for {item}."], topic="finance", subs=SOCIAL),
    K("news", "person", ["{E} mentioned {v}.", "News from {E}: {v}", "{E} said {v} ({date})"],
      lambda r, e: (lambda n: {"topic": n[0], "date": V.day(r), "v": (n[1] if e.gender == "f" else n[2]).format(
          company=r.choice(lx.COMPANIES), city=r.choice(lx.CITIES)[0], month=r.choice(lx.MONTHS))})(
          r.choice(lx.NEWS)),
      asks=["what did {e} say about the {topic}", "any news from {eo} about the {topic}"], distinct="topic",
      say=["{E} said {v}."], subs=SOCIAL),
    K("appointment", "person", ["Appointment with {E} on {date} at {time} - {reason}.",
                                "{E} appt {date} {time} ({reason})", "Booked {E} for {reason}: {date}, {time}"],
      lambda r, e: {"date": V.day(r), "time": V.clock(r), "reason": r.choice(lx.APPOINTMENT_REASONS[e.sub])},
      asks=["when's my appointment with {eo} about {reason}", "what time is the {reason} appointment with {eo}"],
      distinct="reason", say=["{date} at {time} with {E} ({reason})."], topic="health",
      subs=("doctor", "accountant", "tradesperson"), obj="date"),
    K("call", "person", ["Called {E} on {date} - {v}.", "Phone call w/ {E} {date}: {v}", "{date}: spoke to {E}, {v}"],
      lambda r, e: {"date": V.day(r), "v": r.choice([
          "all fine, call back next week", "wants help with the laptop", "sorting Christmas plans",
          "asked about the wedding seating", "needs a lift on Saturday", "sounded tired", "invoice query",
          "talked about the holiday", "owes me a call back"])},
      asks=["what did {e} and I talk about on {date}"], distinct="date",
      latest=["when did I last speak to {eo}", "when did I last call {eo}"], say=["{date}: {v}."], cap=30, subs=SOCIAL),
    K("recommendation", "person", ["{E} recommended {v}.", "Tip from {E}: {v}", "{E} says try {v}"],
      lambda r, e: {"v": r.choice(lx.RECOMMENDATIONS)},
      asks=["did {e} recommend {v}", "was it {e} who recommended {v}"], distinct="v",
      say=["Yes, {E} recommended {v}."], topic="personal", cap=6, subs=SOCIAL),
    K("visit_plan", "person", ["{E} coming to stay {date} for {n} nights.", "{E} visiting {date} ({n} nights)"],
      lambda r, e: {"date": V.day(r), "n": r.randint(1, 5)},
      asks=["when is {e} coming to stay", "how long is {e} staying on {date}"], distinct="date",
      say=["{E} arrives {date} for {n} nights."], subs=("family", "friend"), cap=3),
]

PROJECT = [
    K("identity", "project", ["{E}: {v}.", "{E} - {v}", "Project {E} ({v})"],
      lambda r, e: {"v": e.attrs.get("kind", "side project") + r.choice([
          "", " for " + e.attrs.get("client", "a local business"), ", started " + V.month_year(V.day(r, 0, 200))])},
      asks=["what's {e} about", "remind me what {e} is", "what is {e} again"], say=["{E} is {v}."], p=1.0),
    K("deadline", "project", ["{E} is due {v}.", "Deadline for {E}: {v}", "{E} has to be live by {v}", "{E} due {v}!!"],
      lambda r, e: {"v": V.day(r, 250, 640)},
      asks=["when is {e} due", "what's the deadline for {eo}", "when does {e} need to be finished"],
      nouns=["deadline", "due date"], say=["{E} is due {v}."], cmp=(SOONER,), topic="work", p=0.9),
    K("budget", "project", ["Budget for {E}: {v}.", "{E} budget is {v} all in", "Agreed {v} for {E}"],
      lambda r, e: {"v": V.money(r, 800, 12000, step=50)},
      asks=["what's the budget for {eo}", "how much is {e} worth", "what did we agree to spend on {eo}"],
      nouns=["budget"], say=["The budget is {v}."], cmp=(CHEAPER, DEARER), topic="finance"),
    K("hosting", "project", ["{E} is hosted on {v} ({plan}, {cost}/mo).", "Hosting for {E}: {v}, {plan} plan",
                             "{E} runs on {v}"],
      lambda r, e: {"v": "Shopify" if e.sub == "shop" else r.choice(lx.HOSTS), "plan": r.choice([
          "free tier", "Pro", "Basic", "Starter", "Business"]), "cost": V.money(r, 0, 40, step=0.5)},
      asks=["where is {e} hosted", "what host is {e} on", "who hosts {eo}"], nouns=["hosting", "host"],
      say=["{E} is on {v} ({plan})."], subs=("website", "shop", "app"), topic="websites", p=0.9),
    K("domain", "project", ["Domain for {E} is {v}, registered with {reg}, renews {d}.",
                            "{v} ({E}) - {reg}, renewal {d}", "{E} domain: {v} via {reg}"],
      lambda r, e: {"v": e.attrs.get("domain") or r.choice(["", "get"]) + e.name.split()[0].lower() +
                    r.choice([".co.uk", ".com", ".shop", ".uk"]), "reg": r.choice(lx.REGISTRARS),
                    "d": V.day(r, 300, 700)},
      asks=["what's the domain for {eo}", "who is {ep} domain registered with", "when does the domain for {e} renew"],
      nouns=["domain", "domain name"], say=["{v}, with {reg}; it renews {d}."], subs=("website", "shop", "app"),
      topic="websites", p=0.85),
    K("stack", "project", ["{E} built with {v}.", "Tech for {E}: {v} + {extra}", "{E} stack - {v}, {extra}"],
      lambda r, e: {"v": r.choice(lx.STACKS), "extra": r.choice(["Tailwind", "Stripe", "Plausible", "Mailchimp"])},
      asks=["what is {e} built with", "what tech does {e} use", "which framework did I use for {eo}"],
      nouns=["tech stack", "framework"], say=["{v} with {extra}."], subs=("website", "shop", "app"), topic="websites"),
    K("login", "project", ["{E} admin login: {v} (password in 1Password).", "Admin for {E} - user {v}",
                           "Login to {E} backend with {v}"],
      lambda r, e: {"v": r.choice(["admin", "alex", "alex@alexmorgan.design", "owner@" + e.name.split()[0].lower()
                                   + ".co.uk"])},
      asks=["what's the login for {eo}", "how do I log into {eo}", "what username is the {em} admin"],
      nouns=["login", "admin login", "username"], say=["The admin login is {v}."], topic="websites", p=0.7),
    K("status", "project", ["{E} status ({d}): {v}.", "Where we are with {E}: {v}", "{E} update - {v}"],
      lambda r, e: {"d": V.day(r, 300, 600), "v": r.choice([
          "waiting on copy from the client", "design signed off, build started", "live, fixing small bugs",
          "on hold until the funding comes through", "90% done, testing on mobile", "quotes in, deciding"])},
      asks=["where are we with {eo}", "what's the status of {eo}", "how is {e} going"], nouns=["status"],
      say=["As of {d}: {v}."], topic="work", p=0.9),
    K("rate", "project", ["Charging {v}/day for {E}.", "Day rate on {E} is {v}", "{E}: {v} per day, {days} days"],
      lambda r, e: {"v": V.money(r, 250, 550, step=25), "days": r.randint(3, 30)},
      asks=["what day rate am I charging for {eo}", "how much am I charging for {eo}"], nouns=["day rate"],
      say=["{v} a day."], subs=("website", "app"), topic="finance", p=0.6),
    K("decision", "project", ["Decided to {v} for {E} ({date}).", "{E}: we're going to {v}", "Decision on {E} - {v}"],
      lambda r, e: (lambda d: {"topic": d[0], "v": d[1].format(host=r.choice(lx.HOSTS)), "date": V.day(r)})(
          r.choice(lx.DECISIONS[_scope(e)])),
      asks=["what did we decide about {topic} for {eo}", "what was the decision on {topic} for {eo}"],
      distinct="topic", say=["You decided to {v}."], topic="work", weight=2.0, cap=12),
    K("cost", "project", ["Paid {v} for {item} for {E} on {date}.", "{E} expense: {item}, {v}", "{item} ({E}) - {v}"],
      lambda r, e: {"v": V.money(r, 8, 900, step=0.01), "date": V.day(r),
                    "item": r.choice(lx.COST_ITEMS[_scope(e)])},
      asks=["how much did the {item} for {e} cost", "what did I pay for {item} on {eo}"], distinct="item",
      say=["{item} cost {v}."], topic="finance", weight=1.5, cap=12),
    K("meeting", "project", ["Call with {who} about {E} on {date}: {v}.", "{date} - meeting re {E} w/ {who}. {v}",
                             "Notes {E} ({date}): {v}"],
      lambda r, e: {"who": e.attrs.get("client") or r.choice(["Priya", "Samantha", "the builder", "Jo"]),
                    "date": V.day(r), "v": r.choice([
                        "they want a darker palette", "agreed to phase the launch", "need invoices monthly",
                        "asked for a booking feature", "happy with the draft", "budget may go up 10%"])},
      asks=["what did we agree on the {date} call about {eo}"], distinct="date",
      latest=["what happened on the last call about {eo}", "what was said at the last {em} meeting"],
      say=["On {date} with {who}: {v}."], topic="work", weight=1.5, cap=30),
    K("task", "project", ["{v} for {E} - done {date}.", "Done: {v} ({E}), {date}", "{E}: {v} finished {date}"],
      lambda r, e: {"v": r.choice(lx.TASKS[_scope(e)]), "date": V.day(r)},
      asks=["did I {v} for {eo} yet", "when did I {v} for {eo}"], distinct="v", say=["Yes, done on {date}."],
      topic="work", weight=1.5, obj="date", cap=14),
    K("invoice", "project", ["Invoice {ref} for {E}: {v}, sent {date} - {state}.", "{E} inv {ref} {v} ({state})",
                             "Sent invoice {ref} ({E}) {date}, {v}"],
      lambda r, e: {"ref": f"INV-{r.randint(1040, 1400)}", "v": V.money(r, 150, 4800, step=10), "date": V.day(r),
                    "state": r.choice(["paid", "paid", "overdue", "unpaid", "part paid"])},
      asks=["has the {em} invoice {ref} been paid", "how much was invoice {ref} for {eo}"], distinct="ref",
      say=["{ref}: {v}, sent {date}, {state}."], subs=("website", "app", "shop", "admin"), topic="finance",
      weight=1.5, cap=20),
    K("contact", "project", ["{role} for {E}: {who} ({email}).", "{E} - {role} is {who}, {email}"],
      lambda r, e: (lambda n: {"role": r.choice(["developer", "copywriter", "photographer", "builder", "designer",
                                                 "project contact", "illustrator"]),
                               "who": " ".join(n), "email": V.email(r, *n)})(V.person_name(r)),
      asks=["who is the {role} on {eo}", "who's doing the {role} work for {eo}"], distinct="role",
      say=["{who} ({email})."], topic="work", cap=5),
]

DEVICE = [
    K("identity", "device", ["{E} - {v}, {spec}.", "{E}: {v} ({spec})", "{E} is the {v}, {spec}"],
      lambda r, e: {"v": e.attrs.get("model", e.name), "spec": r.choice([
          "16GB RAM, 512GB", "8GB, 256GB SSD", "space grey", "bought refurbished", "32GB RAM, 1TB", "128GB, blue"])},
      asks=["which model is {e}", "what spec is {e}", "what exactly is {e}"], say=["{E} is the {v} ({spec})."],
      p=1.0),
    K("price", "device", ["Paid {v} for {E}.", "{E} cost {v}", "{E} - {v} incl. VAT", "Price of {E}: {v}"],
      lambda r, e: {"v": V.money(r, *lx.PRICE_RANGE.get(e.sub, (150, 900)), step=1)},
      asks=["how much did {e} cost", "how much was {e}", "what did I pay for {eo}", "price of {eo}"],
      nouns=["price", "cost"], say=["{E} was {v}."], cmp=(CHEAPER, DEARER), topic="shopping", p=0.95),
    K("purchased", "device", ["Bought {E} on {v} from {shop}.", "{E} purchased {v} ({shop})", "Got {E} {v} at {shop}"],
      lambda r, e: {"v": V.day(r, 0, 500), "shop": r.choice(lx.SHOPS)},
      asks=["when did I buy {eo}", "where did I get {eo} from", "how old is {e}"], nouns=["purchase date"],
      say=["You bought {E} on {v} from {shop}."], cmp=(OLDER, NEWER), topic="shopping", p=0.9),
    K("serial", "device", ["{E} serial number: {v}", "Serial for {E} is {v}", "S/N {v} ({E})"],
      lambda r, e: {"v": V.serial(r, r.choice([10, 12]))},
      asks=["what's the serial number of {eo}", "{ep} serial", "do you have the serial for {eo}"],
      nouns=["serial number", "serial"], say=["{v}."], topic="tech", p=0.75),
    K("warranty", "device", ["{E} warranty until {v}.", "{E} covered by {cover} until {v}", "{cover} on {E} ends {v}"],
      lambda r, e: {"v": V.day(r, 300, 900), "cover": r.choice(["AppleCare+", "the manufacturer warranty",
                                                                "John Lewis 2-year guarantee", "extended warranty"])},
      asks=["is {e} still under warranty", "when does the warranty on {eo} run out", "{ep} warranty expiry"],
      nouns=["warranty"], say=["{cover} until {v}."], cmp=(SOONER,), topic="tech", p=0.7),
    K("os", "device", ["{E} is on {v}.", "{E} updated to {v} on {d}", "OS on {E}: {v}"],
      lambda r, e: {"v": r.choice(_OS.get((e.sub, e.attrs.get("brand") == "Apple"), ["firmware 7.1.2",
                                                                                        "firmware 2.4.0"])),
                    "d": V.day(r, 300, 600)},
      asks=["what version is {e} on", "which OS is {e} running", "is {e} up to date"], nouns=["OS version"],
      say=["{E} is on {v}."], topic="tech", p=0.6),
    K("passcode", "device", ["{E} PIN hint: {v}", "Unlock code for {E} - {v}", "{E} passcode: {v}"],
      lambda r, e: {"v": V.password_hint(r, e.name)},
      asks=["what's the passcode for {eo}", "how do I unlock {eo}", "{ep} PIN"], nouns=["passcode", "PIN"],
      say=["Hint: {v}."], topic="tech", p=0.5),
    K("wifi", "device", ["Wifi: {ssid} / password {v}", "{E} network {ssid}, key {v}",
                         "Guest wifi on {E}: {ssid}, {v}"],
      lambda r, e: {"ssid": r.choice(["MorganHome", "OakLane-5G", "eero-4F2A", "Pretty Fly for a WiFi"]),
                    "v": V.wifi_password(r)},
      asks=["what's the wifi password on {eo}", "what's the password for {ep} network", "wifi details for {eo} pls"],
      nouns=["wifi password", "network name"], say=["{ssid}, password {v}."], subs=("router",), p=1.0, topic="home"),
    K("ip", "device", ["{E} admin page at {v}", "{E} IP: {v} (reserved)", "Static IP for {E} is {v}"],
      lambda r, e: {"v": V.ip(r)},
      asks=["what's the IP of {eo}", "how do I get to {ep} admin page", "{ep} IP address"], nouns=["IP address"],
      say=["{v}."], subs=("router", "nas", "printer", "tv"), p=1.0, topic="tech"),
    K("storage", "device", ["{E} has {v} ({used} used).", "{E}: {v} total, {used} full", "Storage on {E} - {v}"],
      lambda r, e: {"v": r.choice({"nas": ["4x4TB in SHR", "2x8TB mirrored"], "phone": ["128GB", "256GB"]}.get(
          e.sub, ["512GB", "1TB", "256GB"])),
                    "used": r.choice(["61%", "about half", "78%", "nearly"])},
      asks=["how much storage does {e} have", "how full is {e}"], nouns=["storage"], say=["{v}, {used} used."],
      subs=("nas", "laptop", "phone"), topic="tech", p=0.7),
    K("issue", "device", ["{E}: {v} since {date}.", "Problem with {E} - {v} ({date})", "{E} {v}, need to book repair"],
      lambda r, e: (lambda i: {"topic": i[0], "v": i[1], "date": V.day(r)})(r.choice(lx.ISSUES[_issue_group(e)])),
      asks=["what was wrong with the {topic} on {eo}", "when did the {topic} problem on {eo} start"],
      distinct="topic", say=["{v}, since {date}."], topic="tech"),
    K("repair", "device", ["{E} repaired at {where} on {date}: {what}, {v}.", "Repair {E} ({date}) - {what}, {v}"],
      lambda r, e: {"where": "the Apple Store" if e.attrs.get("brand") == "Apple" else r.choice(
          ["iSmash", "a repair shop on Kirkgate", f"{e.attrs.get('brand', 'the maker')} support (mail-in)"]),
                    "date": V.day(r), "what": r.choice(["new battery", "screen replaced", "keyboard swap",
                                                        "logic board", "charging port"]), "v": V.money(r, 0, 380)},
      asks=["how much was the {what} for {eo}", "where did I get the {what} done on {eo}"], distinct="what",
      latest=["when was {e} last repaired"], say=["{what} at {where}, {v} ({date})."], topic="tech", obj="date",
      subs=("laptop", "phone", "tablet", "camera", "watch", "console", "tv")),
    K("accessory", "device", ["Bought a {item} for {E} - {v}.", "{item} for {E}, {v} from {shop}"],
      lambda r, e: {"item": r.choice(lx.ACCESSORIES), "v": V.money(r, 8, 90, step=0.01), "shop": r.choice(lx.SHOPS)},
      asks=["how much was the {item} for {eo}", "where did I get the {item} for {eo}"], distinct="item",
      say=["The {item} was {v} from {shop}."], topic="shopping"),
    K("setting", "device", ["{E}: {setting} set to {v}.", "Changed {setting} on {E} to {v}", "{E} {setting} = {v}"],
      lambda r, e: (lambda st: {"setting": st[0], "v": r.choice(st[1])})(r.choice([
          ("auto-update", ["off", "on, overnight", "security only"]),
          ("backup", ["nightly to the NAS", "weekly", "iCloud only"]),
          ("screen lock", ["2 minutes", "5 minutes", "never (plugged in)"]), ("DNS", ["1.1.1.1", "Quad9"]),
          ("night mode", ["from 10pm", "sunset to sunrise"]), ("energy saver", ["on", "off on mains"]),
          ("language", ["English (UK)", "Portuguese"]), ("encryption", ["FileVault on", "BitLocker on"])])),
      asks=["what is {ep} {setting} set to", "how did I set up {setting} on {eo}"], distinct="setting",
      say=["{setting} is {v}."], topic="tech", cap=6),
    K("backup", "device", ["Backed up {E} on {date} to {v}.", "{E} backup {date} ({v}) ok"],
      lambda r, e: {"date": V.day(r), "v": r.choice(["the NAS", "the external SSD", "iCloud", "Backblaze"])},
      asks=[], distinct="date", latest=["when did I last back up {eo}", "when was {e} last backed up"],
      say=["{date}, to {v}."], subs=("laptop", "phone", "nas", "tablet"), topic="tech", obj="date", cap=12),
]

VEHICLE = [
    K("identity", "vehicle", ["{E}: {year} {v}, {colour}.", "{E} is a {colour} {year} {v}", "{E} - {v} ({year})"],
      lambda r, e: {"v": (e.attrs.get("make", "") + " " + e.attrs.get("model", "")).strip() or e.name,
                    "year": r.randint(2012, 2022), "colour": r.choice(["grey", "white", "dark blue", "red", "black"])},
      asks=["what model is {e}", "what year is {e}"], say=["{E} is a {colour} {year} {v}."], p=1.0, obj="year",
      cmp=(("year", "min", ("which one is older",)), ("year", "max", ("which is newer", "which one is newer")))),
    K("reg", "vehicle", ["{E} reg: {v}", "Reg plate {v} ({E})", "{E} registration {v}"],
      lambda r, e: {"v": V.plate(r)},
      asks=["what's the reg on {eo}", "{ep} number plate", "what's {ep} registration"],
      nouns=["reg", "number plate", "registration"], say=["{v}."], subs=("car", "van", "motorbike", "scooter"),
      p=1.0, topic="car"),
    K("mot", "vehicle", ["{E} MOT due {v}.", "MOT for {E} - {v}", "Book MOT {E} before {v}"],
      lambda r, e: {"v": V.day(r, 350, 700)},
      asks=["when is {ep} MOT due", "when does {e} need its MOT", "when's the MOT on {eo}"], nouns=["MOT"],
      say=["{E}'s MOT is due {v}."], subs=("car", "van", "motorbike"), cmp=(SOONER,), topic="car", p=0.95),
    K("road_tax", "vehicle", ["Road tax for {E}: {v}/yr, renews {d}.", "{E} VED {v}, due {d}"],
      lambda r, e: {"v": V.money(r, 0, 190, step=5), "d": V.day(r, 300, 700)},
      asks=["how much is the road tax on {eo}", "when is {ep} road tax due"], nouns=["road tax", "car tax"],
      say=["{v} a year, renews {d}."], subs=("car", "van", "motorbike"), topic="car", p=0.8),
    K("tyres", "vehicle", ["Tyre pressures {E}: {v} psi front, {w} rear.", "{E} tyres {v}/{w} psi"],
      lambda r, e: {"v": r.choice([32, 33, 35, 36]), "w": r.choice([30, 32, 33])},
      asks=["what tyre pressure does {e} need", "{ep} tyre pressures"], nouns=["tyre pressure"],
      say=["{v} psi front, {w} rear."], subs=("car", "van"), topic="car", p=0.6),
    K("lock", "vehicle", ["{E} lock code: {v}", "Combination for {E} lock is {v}"],
      lambda r, e: {"v": V.digits(r, 4)}, asks=["what's the code for {ep} lock", "{ep} lock code"],
      nouns=["lock code"], say=["{v}."], subs=("bike", "scooter"), topic="personal", p=1.0),
    K("battery", "vehicle", ["{E} gets about {v} on a charge.", "Range {E}: {v} in eco mode"],
      lambda r, e: {"v": r.choice(["40 km", "60 km", "150 miles", "230 miles"])},
      asks=["what's the range on {eo}", "how far does {e} go on a charge"], nouns=["range"],
      say=["About {v}."], subs=("bike", "scooter"), p=0.8),
    K("service", "vehicle", ["{E} serviced at {where} on {date}: {what}, {v}.", "Service {E} {date} - {what} ({v})",
                             "{date}: {E} in at {where}, {what}. Cost {v}"],
      lambda r, e: {"where": r.choice(lx.GARAGES), "date": V.day(r), "what": r.choice([
          "full service", "interim service", "brake pads", "new tyres (front)", "cambelt", "aircon regas",
          "wipers and bulbs", "new battery"]), "v": V.money(r, 45, 680, step=0.01)},
      asks=["how much was the {what} on {eo}", "when did {e} get the {what}"], distinct="what",
      latest=["when was {ep} last service", "when did {e} last go in for a service"],
      say=["{what} at {where} on {date}, {v}."], topic="car", weight=2.0, obj="date", cap=14),
    K("mileage", "vehicle", ["{E} on {v} miles ({date}).", "Mileage {E}: {v} at {date}"],
      lambda r, e: {"v": f"{r.randint(12, 98) * 1000 + r.randint(0, 999):,}", "date": V.day(r)},
      asks=["what was the mileage on {eo} on {date}"], distinct="date",
      latest=["what's the mileage on {eo}", "how many miles has {e} done"], say=["{v} miles as of {date}."],
      subs=("car", "van", "motorbike"), topic="car", cap=8),
    K("fine", "vehicle", ["Parking fine for {E} at {where}: {v} ({date}).", "PCN {ref} - {E}, {where}, {v}"],
      lambda r, e: {"where": r.choice(["Leeds station", "the hospital car park", "Harrogate town centre",
                                       "Westfield", "Bath Spa"]), "v": V.money(r, 35, 110, step=5), "date": V.day(r),
                    "ref": V.code(r, 8)},
      asks=["how much was the parking ticket for {eo} at {where}", "did {e} get a fine at {where}"], distinct="where",
      say=["{v} at {where} on {date}."], subs=("car", "van", "motorbike"), topic="car", cap=3),
    K("fuel", "vehicle", ["Filled up {E} {date}: {litres}L, {v} at {where}.", "Fuel {E} {date} - {v} ({litres} l)"],
      lambda r, e: {"date": V.day(r), "litres": r.randint(25, 48), "v": V.money(r, 40, 85, step=0.01),
                    "where": r.choice(["Tesco", "Shell on the ring road", "BP", "Sainsbury's", "Esso"])},
      asks=["how much was the fuel for {eo} on {date}"], distinct="date",
      latest=["when did I last fill up {eo}", "how much was the last tank for {eo}"],
      say=["{date}: {litres} litres, {v}."], subs=("car", "van", "motorbike"), topic="car", cap=20),
    K("trip_log", "vehicle", ["Drove {E} to {where} on {date} ({miles} miles).", "{E}: {date}, {where}, {miles} mi"],
      lambda r, e: {"date": V.day(r), "where": r.choice(lx.CITIES)[0], "miles": r.randint(12, 280)},
      asks=["when did I drive {eo} to {where}", "how far was the drive to {where} in {eo}"], distinct="where",
      say=["{date}, {miles} miles."], subs=("car", "van"), topic="car", cap=10),
]

ACCOUNT = [
    K("identity", "account", ["{E} - {v}.", "{E}: {v}", "{E} ({v})"],
      lambda r, e: {"v": r.choice(_ACCOUNT_USE.get(e.sub, ["opened " + V.month_year(V.day(r, 0, 300))]))},
      asks=["what do I use {eo} for", "what's {e} for again"], say=["{E}: {v}."], p=1.0),
    K("login", "account", ["{E} login email: {v}", "Username for {E} is {v}", "{E} - sign in with {v}"],
      lambda r, e: {"v": r.choice([V.email(r, "alex", "morgan"), "alex@alexmorgan.design", "amorgan" +
                                   V.digits(r, 2)])},
      asks=["what's my login for {eo}", "which email is {e} under", "what username do I use for {eo}"],
      nouns=["login", "username", "login email"], say=["You log in with {v}."], p=0.9),
    K("password_hint", "account", ["{E} password hint: {v}", "Password for {E} - {v}", "{E} pw is {v}"],
      lambda r, e: {"v": V.password_hint(r, e.name)},
      asks=["what's the password for {eo}", "do you have a hint for the {em} password", "{ep} password"],
      nouns=["password", "password hint"], say=["Hint: {v}."], p=0.8),
    K("number", "account", ["{E} account ending {v}, sort code {sc}.", "{E}: a/c ****{v}, SC {sc}",
                            "Sort code for {E} is {sc}, account no ends {v}"],
      lambda r, e: {"v": V.digits(r, 4), "sc": f"{V.digits(r, 2)}-{V.digits(r, 2)}-{V.digits(r, 2)}"},
      asks=["what's the sort code for {eo}", "what are the last digits of {ep} account number"],
      nouns=["sort code", "account number"], say=["Sort code {sc}, account ending {v}."], subs=("bank",),
      p=1.0, topic="finance"),
    K("ref", "account", ["{E} reference: {v}", "{E} customer number {v}", "My {E} ID is {v}"],
      lambda r, e: {"v": r.choice([V.digits(r, 10), V.code(r, 9), "UTR " + V.digits(r, 10)])},
      asks=["what's my customer number for {eo}", "what's my {e} reference", "{ep} ID number"],
      nouns=["reference number", "customer number"], say=["{v}."], subs=("government", "warranty", "utility",
                                                                       "cloud", "investments", "loyalty"), p=1.0),
    K("two_factor", "account", ["2FA for {E} goes to {v}.", "{E} codes come via {v}", "Two-factor on {E}: {v}"],
      lambda r, e: {"v": r.choice(["the iPhone (authenticator app)", "SMS to my mobile", "the YubiKey",
                                   "the Pixel (Google Authenticator)", "email"])},
      asks=["where do the 2FA codes for {e} go", "how do I get the {em} login code"], nouns=["2FA"],
      say=["They go to {v}."], topic="tech", p=0.6),
    K("support", "account", ["{E} helpline: {v} ({hours}).", "Call {E} on {v}, open {hours}"],
      lambda r, e: {"v": V.landline(r), "hours": r.choice(["8am-8pm weekdays", "24/7", "9-5 Mon-Fri"])},
      asks=["what's the number for {em} support", "how do I phone {eo}"], nouns=["support number", "helpline"],
      say=["{v}, {hours}."], p=0.5),
    K("coverage", "account", ["{E} covers {v} until {d}.", "{E}: {v}, valid to {d}"],
      lambda r, e: {"v": r.choice(["engine and gearbox", "parts and labour", "roadside assistance"]),
                    "d": V.day(r, 400, 800)},
      asks=["what does {e} cover", "how long is {e} valid"], nouns=["cover"], say=["{v} until {d}."],
      subs=("warranty",), p=1.0, topic="car"),
    K("bill", "account", ["{E} bill for {month}: {v}.", "{month} {E} invoice {v}", "{E} charged {v} in {month}"],
      lambda r, e: (lambda d: {"month": V.month_year(d), "v": V.money(r, 3, 160, "USD" if e.sub == "cloud" else "GBP",
                                                                     0.01)})(V.day(r)),
      asks=["how much was the {em} bill in {month}", "what did {e} charge me for {month}"], distinct="month",
      say=["{v} for {month}."], subs=("cloud", "utility"), topic="finance", weight=2.5, cap=20),
    K("payee", "account", ["Standing order from {E}: {v} to {who} on the {dom}.", "{E} pays {who} {v} monthly"],
      lambda r, e: {"v": V.money(r, 10, 950, step=5), "who": r.choice([
          "the letting agent", "Jess (holiday fund)", "the savings pot", "Octopus Energy", "council tax",
          "the cleaner", "the nursery"]), "dom": r.choice(["1st", "15th", "28th", "3rd"])},
      asks=["how much goes to {who} from {eo}", "when does the {who} payment leave {eo}"], distinct="who",
      say=["{v} to {who} on the {dom}."], subs=("bank", "payments"), topic="finance"),
    K("password_change", "account", ["Changed {E} password on {date}.", "{E} pw reset {date}"],
      lambda r, e: {"date": V.day(r)}, asks=[], distinct="date",
      latest=["when did I last change the {em} password"], say=["On {date}."], topic="tech", obj="date", cap=3),
    K("transaction", "account", ["{E}: {v} to {who} on {date}.", "Paid {who} {v} from {E} ({date})",
                                 "{date} - {v} {who} ({E})"],
      lambda r, e: {"v": V.money(r, 4, 1200, step=0.01), "date": V.day(r), "who": r.choice([
          "Tesco", "HMRC", "Jess", "the dentist", "Trainline", "Airbnb", "Screwfix", "the council", "Ocado",
          "the vet", "IKEA", "Uber", "British Gas", "the window cleaner", "Deliveroo"])},
      asks=["how much did I pay {who} from {eo}", "when did I pay {who} from {eo}"], distinct="who",
      say=["{v} to {who} on {date}."], subs=("bank", "payments", "shopping"), topic="finance", weight=3.0, cap=25),
    K("statement", "account", ["{month} statement for {E} saved to {v}.", "{E} statement ({month}) - in {v}"],
      lambda r, e: (lambda d: {"month": V.month_year(d), "v": r.choice(["Drive > Finance", "the Admin folder",
                                                                        "Downloads (move it!)", "the NAS"])})(V.day(r)),
      asks=["where's the {month} statement for {eo}", "did I save the {em} statement for {month}"], distinct="month",
      say=["In {v}."], topic="finance", cap=10),
]

SUBSCRIPTION = [
    K("plan", "subscription", ["{E}: {v} plan.", "On the {v} tier of {E}", "{E} plan - {v}"],
      lambda r, e: {"v": r.choice(["Standard", "Premium", "Family", "Individual", "Annual", "Business Starter",
                                   "Basic with ads"])},
      asks=["what plan am I on for {eo}", "which {em} tier do I have"], nouns=["plan", "tier"],
      say=["The {v} plan."], p=1.0),
    K("price", "subscription", ["{E} costs {v}/month.", "{E} - {v} a month", "Paying {v} pm for {E}"],
      lambda r, e: {"v": V.money(r, 3, 55, step=0.01)},
      asks=["how much is {e}", "how much am I paying for {eo}", "what does {e} cost me", "{em} price per month"],
      nouns=["price", "monthly cost", "cost"], say=["{E} is {v} a month."], cmp=(CHEAPER, DEARER),
      topic="finance", p=1.0),
    K("renewal", "subscription", ["{E} renews on {v}.", "Renewal date {E}: {v}", "{E} auto-renews {v}"],
      lambda r, e: {"v": V.day(r, 300, 700)},
      asks=["when does {e} renew", "when is {e} up for renewal", "when will I be charged for {eo} next"],
      nouns=["renewal date"], say=["{E} renews {v}."], cmp=(SOONER,), topic="finance", p=0.9),
    K("card", "subscription", ["{E} is billed to {v}.", "{E} paid with {v}", "Card on {E}: {v}"],
      lambda r, e: {"v": r.choice(lx.CARDS)},
      asks=["which card is {e} on", "what card pays for {eo}", "how do I pay for {eo}"], nouns=["payment card"],
      say=["It's on {v}."], topic="finance", p=0.8),
    K("shared", "subscription", ["{E} shared with {v}.", "{v} also use {E}", "{E} members: me + {v}"],
      lambda r, e: {"v": r.sample(["Jess", "Mum", "Dad", "Marco", "Leo", "Sam P"], 2)},
      asks=["who else is on {eo}", "who am I sharing {eo} with"], nouns=["members"], say=["{v}."], p=0.4),
    K("cancel", "subscription", ["Thinking of cancelling {E} - {v}.", "Cancel {E}? {v}", "{E}: {v}, maybe drop it"],
      lambda r, e: {"v": r.choice(["hardly use it", "price went up again", "only for one show", "Jess has it anyway"])},
      asks=["why did I want to cancel {eo}", "was I going to cancel {eo}"], say=["You said: {v}."], p=0.35),
    K("price_change", "subscription", ["{E} went up from {old} to {v} in {month}.", "{E} price rise {month}: {v}"],
      lambda r, e: (lambda d: {"month": V.month_year(d), "v": V.money(r, 5, 60, step=0.01),
                               "old": V.money(r, 3, 50, step=0.01)})(V.day(r)),
      asks=["what did {e} go up to in {month}", "how much did {e} go up to in {month}"], distinct="month",
      say=["It went up to {v} in {month}."], topic="finance", cap=3),
    K("charge", "subscription", ["{E} charged {v} on {date}.", "{E} payment {date}: {v}", "{date} {E} {v}"],
      lambda r, e: {"date": V.day(r), "v": V.money(r, 3, 55, step=0.01)},
      asks=["how much did {e} charge on {date}"], distinct="date", latest=["when did {e} last charge me"],
      say=["{v} on {date}."], topic="finance", cap=16),
]

PET = [
    K("identity", "pet", ["{E} is a {v}, {colour}.", "{E}: {colour} {v}", "Our {v} {E} ({colour})"],
      lambda r, e: {"v": r.choice(lx.PET_BREEDS.get(e.sub, ["rescue"])), "colour": r.choice([
          "golden", "black and white", "ginger", "tabby", "chocolate", "grey"])},
      asks=["what breed is {e}", "what kind of {sub} is {e}"], say=["{E} is a {colour} {v}."], p=1.0),
    K("birthday", "pet", ["{E}'s birthday is {v}.", "{E} born {v}", "{E} DOB {v} (from the rescue)"],
      lambda r, e: {"v": V.birth_date(r, 1, 12)},
      asks=["how old is {e}", "when is {ep} birthday"], nouns=["birthday", "age"], say=["{E} was born {v}."],
      cmp=(("v", "min", ("which one is older",)), ("v", "max", ("which is the youngest",))), p=0.9),
    K("vet", "pet", ["{E}'s vet is {v}, {phone}.", "Vet for {E}: {v} ({phone})"],
      lambda r, e: {"v": r.choice(["Park Road Vets", "Vets4Pets Headingley", "Medivet", "Oakwood Vets"]),
                    "phone": V.landline(r)},
      asks=["which vet does {e} go to", "what's {ep} vet's number"], nouns=["vet"], say=["{v}, on {phone}."], p=0.95),
    K("food", "pet", ["{E} eats {v}, {amount} twice a day.", "Feeding {E}: {amount} of {v} x2", "{E} food - {v}"],
      lambda r, e: {"v": r.choice(["Lily's Kitchen", "Royal Canin sensitive", "Harringtons", "Purina One",
                                   "Forthglade wet food"]),
                    "amount": r.choice(["80g", "half a cup", "1 pouch", "120g"])},
      asks=["what food does {e} eat", "how much do I feed {eo}", "what does {e} have for dinner"],
      nouns=["food"], say=["{amount} of {v}, twice a day."], p=0.9),
    K("chip", "pet", ["{E} microchip: {v}", "Chip number for {E} is {v}"], lambda r, e: {"v": V.digits(r, 15)},
      asks=["what's {ep} microchip number", "{ep} chip number"], nouns=["microchip number"], say=["{v}."], p=0.8),
    K("insurance", "pet", ["{E} insured with {v}, policy {ref}, {cost}/mo.", "Pet insurance {E}: {v} ({ref})"],
      lambda r, e: {"v": r.choice(["Petplan", "ManyPets", "Animal Friends"]), "ref": V.code(r, 8),
                    "cost": V.money(r, 12, 48, step=0.01)},
      asks=["who is {e} insured with", "what's {ep} insurance policy number"], nouns=["insurance"],
      say=["{v}, policy {ref}."], p=0.7, topic="finance"),
    K("sitter", "pet", ["Pet sitter for {E}: {v}, {phone}.", "{v} can look after {E} ({phone})"],
      lambda r, e: {"v": " ".join(V.person_name(r)), "phone": V.phone(r)},
      asks=["who can look after {eo} when I'm away", "who's {ep} sitter"], nouns=["sitter", "pet sitter"],
      say=["{v}, on {phone}."], p=0.6),
    K("vet_visit", "pet", ["Vet {date}: {E} - {v}, {cost}.", "{E} at the vet {date} for {v}", "{v} ({E}), {date}"],
      lambda r, e: {"date": V.day(r), "v": r.choice(["booster jab", "ear infection", "limping", "teeth clean",
                                                     "annual check", "upset tummy", "flea treatment", "nail trim"]),
                    "cost": V.money(r, 18, 320, step=0.01)},
      asks=["when did {e} have the {v}", "how much was {ep} {v}"], distinct="v",
      latest=["when did {e} last go to the vet", "when was {ep} last vet visit"],
      say=["{date}, for {v} ({cost})."], weight=2.0, obj="date", cap=8),
    K("weight", "pet", ["{E} weighed {v} on {date}.", "Weight {E}: {v} ({date})"],
      lambda r, e: {"v": f"{r.uniform(3, 24):.1f} kg", "date": V.day(r)},
      asks=["how much did {e} weigh on {date}"], distinct="date", latest=["how much does {e} weigh"],
      say=["{v} as of {date}."], cap=10),
    K("behaviour", "pet", ["{E} {v} ({date}).", "Note on {E}: {v}", "{E} has started {v}"],
      lambda r, e: {"date": V.day(r), "v": r.choice([
          "scratching the sofa", "pulling on the lead", "scared of fireworks", "sleeping on the stairs",
          "eating grass", "barking at the postman", "hiding under the bed", "begging at dinner"])},
      asks=["what did I note about {eo} {v}"], distinct="v", say=["{date}: {v}."], cap=5),
    K("grooming", "pet", ["{E} groomed {date} at {where}, {v}.", "Grooming {E} - {date}, {v}"],
      lambda r, e: {"date": V.day(r), "where": r.choice(["Posh Paws", "Waggy Tails", "the vet"]),
                    "v": V.money(r, 25, 60)},
      asks=[], distinct="date", latest=["when was {e} last groomed"], say=["{date} at {where}."], subs=("dog",),
      cap=6, obj="date"),
    K("care", "pet", ["Booked {who} to look after {E} from {date}, {cost}.", "{E} with {who} {date} ({cost})"],
      lambda r, e: {"who": r.choice(["Mum", "Tom next door", "Rover sitter Kate", "the kennels", "Jess"]),
                    "date": V.day(r), "cost": V.money(r, 0, 180, step=5)},
      asks=["who is looking after {eo} on {date}"], distinct="date", latest=["who looked after {eo} last time"],
      say=["{who}, from {date}."], cap=8, obj="who"),
]

PLACE = [
    K("address", "place", ["{E}: {v}", "Address for {E} is {v}", "{E} is at {v}"],
      lambda r, e: {"v": V.address(r, next((c for c in lx.CITIES if c[0] == e.attrs.get("city")), None))},
      asks=["what's the address of {eo}", "where is {e}", "postcode for {eo}"],
      nouns=["address", "postcode"], say=["{E} is at {v}."], p=1.0),
    K("wifi", "place", ["Wifi at {E}: {ssid}, password {v}", "{E} wifi - {ssid} / {v}", "{ssid} pw {v} ({E})"],
      lambda r, e: {"ssid": r.choice(["BT-7XK2", "VM4471203", "WeWork", "TP-Link_88", "Harrogate-Guest"]),
                    "v": V.wifi_password(r)},
      asks=["what's the wifi password at {eo}", "wifi at {eo}?", "how do I get online at {eo}"],
      nouns=["wifi password", "wifi"], say=["{ssid}, password {v}."], subs=("home", "rental", "office", "family"),
      topic="home", p=0.9),
    K("code", "place", ["{E} key safe code {v}.", "Door code at {E}: {v}", "{E} alarm code - {v}"],
      lambda r, e: {"v": V.digits(r, 4)}, asks=["what's the key safe code at {eo}", "door code for {eo}"],
      nouns=["key safe code", "door code", "alarm code"], say=["{v}."], subs=("home", "rental", "office", "family"),
      topic="home", p=0.7),
    K("agent", "place", ["Letting agent for {E}: {v}, contact {who} {phone}.", "{E} managed by {v} ({who})"],
      lambda r, e: {"v": r.choice(["Linley & Simpson", "Manning Stainton", "Hunters", "OpenRent (self-managed)"]),
                    "who": V.person_name(r)[0], "phone": V.landline(r)},
      asks=["who is the letting agent for {eo}", "who manages {eo}"], nouns=["letting agent", "agent"],
      say=["{v}; {who} on {phone}."], subs=("rental",), p=1.0, topic="finance"),
    K("rent", "place", ["Rent for {E} is {v} pcm, due on the {dom}.", "{E} rent {v}/month ({dom})",
                        "Tenant pays {v} for {E}"],
      lambda r, e: {"v": V.money(r, 650, 1400, step=25), "dom": r.choice(["1st", "5th", "20th"])},
      asks=["how much is the rent on {eo}", "when is rent due for {eo}", "what rent do we get for {eo}"],
      nouns=["rent"], say=["{v} a month, due on the {dom}."], subs=("rental",), p=1.0, topic="finance"),
    K("bins", "place", ["Bins at {E}: {v}.", "{E} bin day is {v}", "Recycling {E} - {v}"],
      lambda r, e: {"v": r.choice(["black Tuesday, green every other Friday", "Wednesdays, glass monthly",
                                   "Mondays (blue bin fortnightly)"])},
      asks=["when are the bins at {eo}", "what day is bin day at {eo}"], nouns=["bin day"], say=["{v}."],
      subs=("home", "rental", "family"), topic="home", p=0.8),
    K("hours", "place", ["{E} open {v}.", "Opening hours {E}: {v}", "{E} - {v}"],
      lambda r, e: {"v": r.choice(["Mon-Fri 8-6, Sat 9-1", "Tue-Sun 12-10:30", "24 hours", "weekdays 8:30-5"])},
      asks=["when is {e} open", "what time does {e} close", "{ep} opening hours"], nouns=["opening hours"],
      say=["{v}."], subs=("clinic", "restaurant", "office", "shop", "gym"), p=0.9),
    K("phone", "place", ["{E} phone: {v}", "Call {E} on {v}", "{E} tel {v}"],
      lambda r, e: {"v": V.landline(r)}, asks=["what's the number for {eo}", "how do I ring {eo}"],
      nouns=["number", "phone number"], say=["{v}."], subs=("clinic", "restaurant", "office", "shop", "gym"), p=0.9),
    K("favourite", "place", ["At {E} get the {v}.", "{E}: the {v} is great", "Order {v} at {E}"],
      lambda r, e: {"v": r.choice(["margherita", "black daal", "lamb ragu", "tiramisu", "house red", "burrata"])},
      asks=["what's good at {eo}", "what do I usually order at {eo}"], nouns=["usual order"],
      say=["The {v}."], subs=("restaurant",), p=1.0),
    K("meter", "place", ["Meter reading {E} {date}: {v}.", "{E} {meter} reading {v} on {date}"],
      lambda r, e: {"date": V.day(r), "v": f"{r.randint(10000, 99999)}", "meter": r.choice(["electric", "gas"])},
      asks=["what was the meter reading at {eo} on {date}"], distinct="date",
      latest=["what was the last meter reading at {eo}"], say=["{v} on {date}."], subs=("home", "rental"),
      topic="home", cap=14),
    K("maintenance", "place", ["{item} at {E} fixed on {date} by {who}, {v}.", "{E}: {item} - {who}, {v} ({date})"],
      lambda r, e: {"item": r.choice(["boiler", "leaking tap", "fence panel", "extractor fan", "smoke alarm",
                                      "gutter", "shower seal", "front door lock"]), "date": V.day(r),
                    "who": r.choice(["Tom B", "British Gas", "a handyman", "Copperfield Joinery"]),
                    "v": V.money(r, 40, 900, step=5)},
      asks=["who fixed the {item} at {eo}", "how much was the {item} repair at {eo}"], distinct="item",
      say=["{who} fixed the {item} on {date}, {v}."], subs=("home", "rental", "family"), topic="home"),
    K("visit", "place", ["Went to {E} on {date} with {who} - {v}.", "{E} {date} ({who}): {v}"],
      lambda r, e: {"date": V.day(r), "who": r.choice(["Jess", "Mum", "Sam P", "Priya", "Marco", "Jo"]),
                    "v": r.choice(["lovely", "a bit slow", "book the window table next time", "too loud", "great"])},
      asks=["when did I go to {eo} with {who}", "what did I think of {eo} when I went with {who}"],
      distinct="who", latest=["when was I last at {eo}"], say=["{date} with {who}: {v}."],
      subs=("restaurant", "clinic", "gym"), topic="personal", obj="date", cap=6),
    K("note", "place", ["{E}: {v}.", "Note about {E} - {v}", "{E} - {v}"],
      lambda r, e: (lambda n: {"topic": n[0], "v": n[1]})(r.choice([
          ("parking", "parking is on-street, permit needed before 6pm"), ("heating", "thermostat is in the hall"),
          ("stopcock", "stopcock under the kitchen sink"), ("fuse box", "fuse box in the understairs cupboard"),
          ("spare key", "spare key with Tom next door"), ("neighbours", "neighbours at 16 are really nice"),
          ("deliveries", "parcels go to the shop on the corner"), ("booking", "book at least a week ahead"),
          ("accessibility", "step-free entrance round the side"), ("dogs", "dogs allowed on the terrace")])),
      asks=["what did I note about the {topic} at {eo}", "{topic} at {eo}?"], distinct="topic",
      say=["{v}."], topic="home", cap=6),
    K("visitor", "place", ["{who} coming to {E} on {date} ({why}).", "{E}: {who} booked {date} - {why}"],
      lambda r, e: {"who": r.choice(["Gas engineer", "The window cleaner", "Tom B", "The letting agent",
                                     "The electrician", "Openreach", "The surveyor"]), "date": V.day(r),
                    "why": r.choice(["annual service", "inspection", "quote", "meter swap", "fixing the leak"])},
      asks=["when is the {who} coming to {eo}"], distinct="who", say=["{date}, for the {why}."],
      subs=("home", "rental", "family", "office"), topic="home", cap=6, obj="date"),
    K("table", "place", ["Booked a table at {E} for {date}, {n} people, {time}.", "{E} booking {date} {time} x{n}"],
      lambda r, e: {"date": V.day(r), "n": r.randint(2, 8), "time": V.clock(r)},
      asks=["what time is the table at {eo} on {date}"], distinct="date",
      latest=["when is my booking at {eo}"], say=["{date} at {time}, for {n}."], subs=("restaurant",), cap=10,
      obj="date"),
]

DOCUMENT = [
    K("identity", "document", ["{E}: {v}.", "{E} - {v}", "{E} ({v})"],
      lambda r, e: {"v": r.choice(_DOCUMENT_WHAT.get(e.sub, ["paper copy and a scan"]))},
      asks=["what is {e} for", "what does {e} cover"], say=["{E}: {v}."], p=1.0),
    K("number", "document", ["{E} number: {v}", "{E} no. {v}", "Ref for {E} is {v}"],
      lambda r, e: {"v": r.choice([V.digits(r, 9), V.code(r, 10), "POL-" + V.digits(r, 8)])},
      asks=["what's the number on {eo}", "what is {ep} number", "{ep} reference"],
      nouns=["number", "policy number", "reference"], say=["{v}."], p=1.0, topic="admin"),
    K("expiry", "document", ["{E} expires {v}.", "{E} valid until {v}", "Renew {E} before {v}"],
      lambda r, e: {"v": V.day(r, 200, 1500)},
      asks=["when does {e} expire", "when do I need to renew {eo}", "is {e} still valid"],
      nouns=["expiry date", "renewal"], say=["{E} expires {v}."], cmp=(SOONER,), topic="admin", p=0.95),
    K("location", "document", ["{E} is in {v}.", "Kept {E} in {v}", "Where's {E}? {v}"],
      lambda r, e: {"v": r.choice(["the blue folder in the study", "the fireproof box", "Google Drive > Admin",
                                   "the top drawer of the desk", "the iCloud 'Docs' folder", "Mum's safe"])},
      asks=["where is {ep}", "where did I put {eo}", "where do I keep {eo}"], nouns=["location"],
      say=["In {v}."], topic="admin", p=0.8),
    K("premium", "document", ["{E} premium {v}/year.", "Paying {v} a year for {E}", "{E} costs {v} annually"],
      lambda r, e: {"v": V.money(r, 90, 900, step=0.01)},
      asks=["how much is {e}", "what's the premium on {eo}", "how much do I pay for {eo}"],
      nouns=["premium", "cost"], say=["{v} a year."], cmp=(CHEAPER, DEARER), subs=("insurance",), p=1.0,
      topic="finance"),
    K("excess", "document", ["{E} excess is {v}.", "Excess on {E}: {v}"],
      lambda r, e: {"v": V.money(r, 100, 500, step=50)},
      asks=["what's the excess on {eo}"], nouns=["excess"], say=["{v}."], subs=("insurance",), p=0.8),
    K("quote", "document", ["Renewal quote for {E} from {who}: {v}.", "{who} quoted {v} for {E}"],
      lambda r, e: {"who": r.choice(["Direct Line", "LV=", "Aviva", "Admiral", "Churchill", "Hastings"]),
                    "v": V.money(r, 120, 950, step=0.01)},
      asks=["what did {who} quote for {eo}", "how much was the {who} quote for {eo}"], distinct="who",
      say=["{who} quoted {v}."], subs=("insurance",), topic="finance"),
    K("claim", "document", ["Claim on {E} {date}: {v}, ref {ref}.", "{E} claim ({date}) - {v}"],
      lambda r, e: {"date": V.day(r), "v": r.choice(["water leak", "stolen bike", "cracked windscreen",
                                                     "broken laptop screen", "storm damage"]), "ref": V.code(r, 8)},
      asks=["what's the claim reference for the {v} on {eo}", "when did I claim on {eo} for the {v}"], distinct="v",
      say=["Claim ref {ref}, {date}."], subs=("insurance",), topic="admin"),
    K("copy", "document", ["Sent a copy of {E} to {who} on {date}.", "{who} has a copy of {E} ({date})"],
      lambda r, e: {"who": r.choice(["the letting agent", "Sam O", "the mortgage broker", "Jess", "the bank",
                                     "HR at the agency"]), "date": V.day(r)},
      asks=["did I send {eo} to {who}", "when did {who} get a copy of {eo}"], distinct="who",
      say=["Yes, on {date}."], topic="admin", obj="date", cap=4),
    K("term", "document", ["{E}: {v}.", "{E} says {v}", "Note on {E} - {v}"],
      lambda r, e: {"v": r.choice(_terms(e))},
      asks=["what's the notice period on {eo}", "what does {e} say about notice"], nouns=["terms"],
      say=["{v}."], subs=("contract",), p=1.0),
]

TRIP = [
    K("dates", "trip", ["{E}: {v} to {end}.", "{E} dates {v} - {end}", "Away for {E} from {v} until {end}"],
      lambda r, e: {"v": _trip(r, e)[0], "end": _trip(r, e)[1]},
      asks=["when is {e}", "what are the dates for {eo}", "when do I leave for {eo}"], nouns=["dates"],
      say=["{v} to {end}."], cmp=(SOONER,), topic="travel", p=1.0),
    K("flight", "trip", ["Flights for {E}: {airline} {code}, {time} from {airport}.", "{E} flight {code} ({airline})"
                         " departs {time}, {airport}", "{code} out at {time} for {E}"],
      lambda r, e: (lambda a: {"airline": a[0], "code": f"{a[1]}{r.randint(100, 1999)}", "time": V.clock(r),
                               "airport": r.choice(lx.AIRPORTS)})(r.choice(lx.AIRLINES)),
      asks=["what time is my flight for {eo}", "what's the flight number for {eo}", "which airport for {eo}"],
      nouns=["flight", "flight number"], say=["{airline} {code} at {time} from {airport}."], topic="travel",
      subs=("holiday",), p=0.9, obj="code"),
    K("stay", "trip", ["Staying at {v} for {E}, booking ref {ref}.", "{E} accommodation: {v} ({ref})"],
      lambda r, e: {"v": r.choice(lx.HOTELS), "ref": V.code(r, 8)},
      asks=["where am I staying for {eo}", "what's the booking reference for the hotel for {eo}"],
      nouns=["hotel", "accommodation"], say=["{v}, ref {ref}."], topic="travel", p=0.9),
    K("budget", "trip", ["Budget for {E}: {v}.", "{E} spend so far {v}", "Trying to keep {E} under {v}"],
      lambda r, e: {"v": V.money(r, 150, 2500, step=50)}, asks=["what's my budget for {eo}", "how much is {e} costing"],
      nouns=["budget"], say=["{v}."], cmp=(CHEAPER, DEARER), topic="finance", p=0.7),
    K("with", "trip", ["Going to {E} with {v}.", "{E}: me, {v}", "{v} coming on {E}"],
      lambda r, e: {"v": r.sample(["Jess", "Marco", "Sam P", "Priya", "Mum", "Dad", "Leo"], 2)},
      asks=["who is coming on {eo}", "who am I going to {eo} with"], nouns=["who's coming"], say=["{v}."], p=0.8),
    K("dress", "trip", ["{E} dress code: {v}.", "Dress code for {E} is {v}"],
      lambda r, e: {"v": r.choice(["black tie optional", "smart casual", "garden party, no white"])},
      asks=["what's the dress code for {eo}", "what do I wear to {eo}"], nouns=["dress code"], say=["{v}."],
      subs=("event",), p=1.0),
    K("booking", "trip", ["Booked {v} for {date} ({E}) - {cost}.", "{E}: {v} on {date}, paid {cost}",
                          "{v} {date}, {cost} ({E})"],
      lambda r, e: {"v": r.choice(lx.ACTIVITIES), "date": V.BASE_DATE.fromordinal(
          _trip(r, e)[0].toordinal() + r.randint(0, (_trip(r, e)[1] - _trip(r, e)[0]).days)),
                    "cost": V.money(r, 12, 160)},
      asks=["when is the {v} on {eo}", "how much was the {v} for {eo}", "did I book the {v} for {eo}"], distinct="v",
      say=["{v} on {date}, {cost}."], topic="travel", weight=2.0, obj="date", cap=12),
    K("todo", "trip", ["Before {E}: {v}.", "To do for {E} - {v}", "{E} prep: {v}"],
      lambda r, e: {"v": r.choice(["renew the EHIC card", "buy euros", "book the dog sitter", "get travel adaptors",
                                   "check passport expiry", "order the gift", "print boarding passes"])},
      asks=["did I note to {v} for {eo}"], distinct="v", say=["Yes: {v}."], topic="travel"),
    K("tip", "trip", ["{who} recommends {v} for {E}.", "For {E}: try {v} ({who})", "{E} - {who} says go to {v}"],
      lambda r, e: {"who": r.choice(["Marco", "Priya", "Sam P", "Jess", "a Reddit thread", "the host"]),
                    "v": r.choice(["Time Out Market", "the castle early in the morning", "the flea market",
                                   "the botanical garden", "a walk along the river", "the cathedral rooftop",
                                   "the food hall", "a sunset viewpoint", "the old town bakery",
                                   "the local wine bar"])},
      asks=["who recommended {v} for {eo}", "was {v} on the list for {eo}"], distinct="v",
      say=["{who} recommended {v}."],
      topic="travel", cap=8),
]

def _log_group(e) -> str:
    if e.type == "place" and e.sub not in ("home", "rental", "family", "office"):
        return "venue"
    return e.type


def _log_kind(etype: str) -> Kind:
    return K("log", etype, ["{date}: {E} - {v}", "{E}: {v} ({date})", "Note {date} re {E}: {v}"],
             lambda r, e: {"date": V.day(r), "v": r.choice(lx.LOG_NOTES[_log_group(e)])},
             asks=["what did I note about {eo} on {date}"], distinct="v", say=["On {date}: {v}."], cap=8,
             obj="v")


for _kinds, _type in ((PERSON, "person"), (PROJECT, "project"), (DEVICE, "device"), (VEHICLE, "vehicle"),
                      (ACCOUNT, "account"), (SUBSCRIPTION, "subscription"), (PET, "pet"), (PLACE, "place"),
                      (DOCUMENT, "document"), (TRIP, "trip")):
    _kinds.append(_log_kind(_type))

BY_TYPE = {"self": SELF, "person": PERSON, "project": PROJECT, "device": DEVICE, "vehicle": VEHICLE,
           "account": ACCOUNT, "subscription": SUBSCRIPTION, "pet": PET, "place": PLACE, "document": DOCUMENT,
           "trip": TRIP}

# How many facts an entity of each type gets, relative to the average: projects and people gather many notes,
# documents few.
FACT_WEIGHT = {"self": 1.8, "person": 1.0, "project": 1.6, "device": 0.8, "vehicle": 0.9, "account": 0.7,
               "subscription": 0.45, "pet": 0.8, "place": 0.55, "document": 0.45, "trip": 0.8}

TOPIC_BY_SUB = {"family": "family", "friend": "friends", "colleague": "work", "manager": "work", "client": "work",
                "accountant": "finance", "doctor": "health", "tradesperson": "home", "neighbour": "home",
                "self": "personal", "clinic": "health"}
TOPIC_BY_TYPE = {"project": "work", "device": "tech", "vehicle": "car", "account": "finance",
                 "subscription": "finance", "pet": "pets", "place": "home", "document": "admin", "trip": "travel",
                 "person": "friends"}


def kinds_for(etype: str, sub: str) -> list[Kind]:
    """The kinds that make sense for an entity of this type and subtype."""
    t = "self" if sub == "self" else etype
    return [k for k in BY_TYPE[t] if k.subs is None or sub in k.subs]
