"""Conversation phrasing (data): question frames, follow-ups, small talk, and the assistant's stock replies.

Placeholders: ``{np}`` a noun phrase ("mum's address"), ``{pp}`` a possessive ("her", "its", "my"), ``{noun}`` a
fact noun ("address"), ``{e}``/``{eo}``/``{ep}`` an entity as subject/object/possessive, ``{ord}`` an ordinal.
"""

# Generic ways to ask for a stored value, around a noun phrase.
NOUN_FRAMES = [
    "what's {np}", "what is {np}", "do you have {np}", "remind me {np}", "{np}", "i need {np}",
    "can you tell me {np}", "what was {np} again", "have I got {np} saved", "{np} pls", "quick one - {np}",
    "look up {np}", "what did I save for {np}", "can you find {np}", "{np} again?", "sorry what's {np}",
    "whats {np}", "I forgot {np}",
]
NP_THING = ["{ep} {noun}", "the {noun} for {eo}", "the {noun} of {eo}", "the {noun} on {eo}"]
NP_PERSON = ["{ep} {noun}", "{ep} {noun}", "the {noun} for {eo}"]

# Same entity, another fact, said as briefly as people do in a chat.
ELLIPSIS = [
    "and {pp} {noun}", "what about {pp} {noun}", "ok and {pp} {noun}", "{pp} {noun}?", "and the {noun}",
    "also {pp} {noun}", "and {noun}", "ok what about the {noun}", "{noun}?", "and {pp} {noun} pls",
    "what's {pp} {noun} then", "great, and {pp} {noun}",
]
# Same fact, another entity named explicitly.
SAME_FOR = ["what about {e}", "and {e}", "and for {eo}", "same for {eo}", "{e}?", "how about {e}", "and {ep}",
            "ok now {e}", "what about for {eo}"]
# Same fact, the other entity of the two just discussed.
OTHER_ONE = ["what about the other one", "and the other one", "the other one?", "and the other",
             "same for the other one", "what about the other {sub}", "and the other {sub}?", "ok and the other one"]
MORE = ["tell me more", "anything else", "what else do you have on {eo}", "more details pls", "go on",
        "what else do you know about {eo}", "anything else about {eo}", "more", "and what else",
        "tell me more about {eo}", "what else", "anything else I should know", "more info on {eo}?"]
ORDINAL = ["the {ord} one", "tell me about the {ord} one", "more on the {ord} one", "what about the {ord}",
           "and the {ord} one?", "{ord} one pls", "the {ord}", "ok the {ord} one"]
ORDINALS = [("first", "1st"), ("second", "2nd"), ("third", "3rd"), ("fourth", "4th")]
CLARIFY_PICK = ["{s}", "{s}", "I meant {s}", "{s} pls", "the {ord} one", "sorry, {s}", "{s} obviously"]
PAIR_OPEN = ["compare {a} and {b}", "{a} vs {b}", "what do I have on {a} and {b}", "tell me about {a} and {b}",
             "remind me about {a} and {b}", "{a} or {b}, what do you have on them"]

THANKS = ["thanks", "thank you!", "cheers", "perfect", "ok", "great thx", "lol ok", "nice one", "brilliant, ta",
          "👍", "ok cool", "got it", "thanks!!", "ta", "amazing thank you", "ok thanks", "k"]
THANKS_REPLY = ["You're welcome!", "Any time.", "No problem.", "Happy to help.", "👍", "Glad that helped."]
GREETINGS = ["hi", "morning!", "hey", "are you there", "hello", "hiya", "evening", "yo", "good morning"]
GREETING_REPLY = ["Hi Alex! What can I do for you?", "Morning! How can I help?", "Hey - what do you need?",
                  "I'm here. What's up?", "Hello! What can I help with?"]
SMALL_TALK = [
    ("tell me a joke", "Why did the web designer drown? They didn't know if they should float left or right."),
    ("what can you do", "I can look things up in your saved notes, set reminders, send messages and help plan."),
    ("how are you today", "All good, thanks for asking! What can I do for you?"),
    ("write a haiku about mondays", "Kettle sighs awake / inbox full of yesterdays / the cat claims my chair"),
    ("what's 15% of 240", "15% of 240 is 36."),
    ("how many days until christmas", "It depends on today's date - want me to count from now?"),
    ("spell necessary", "n-e-c-e-s-s-a-r-y"),
    ("convert 5 miles to km", "5 miles is about 8 km."),
    ("what's a good name for a candle scent with fig and cedar", "How about 'Orchard Smoke' or 'Fig & Timber'?"),
    ("i'm so tired today", "Sorry to hear that. Want me to move anything off today's list?"),
    ("say something nice", "You've got a lot done this month - the bakery site is nearly there!"),
    ("what should I have for dinner", "Something quick? A stir fry or pasta would do it."),
    ("is it pronounced gif or jif", "The creator says 'jif', most people say 'gif'. Both are fine."),
    ("ugh", "Rough day? Anything I can take off your plate?"),
]
# Questions about things that were never stored (the reply says so; no memory_refs).
NOT_STORED = [
    "what's my pension number", "when is my driving test", "what's the wifi password at the cabin",
    "what's my locker code at the gym", "what's Priya's husband's job", "what's the gate code at the allotment",
    "what's the alarm code at Jess's new place", "what's my library card number", "what's Marco's shoe size",
    "when is the bin collection at the office", "what's dad's blood type", "where did I park", "what's my Uber rating",
    "who is my MP", "what size ring does Jess wear", "what's the name of Leo's teacher",
    "what's my frequent flyer number",
    "when does the car park season ticket run out", "what's the cat's microchip company",
    "what's the name of the vet's receptionist",
]
NOT_STORED_REPLY = ["I don't have that saved, sorry.", "Nothing about that in your notes. Want me to add it?",
                    "I can't find that in memory.", "I don't think you've told me that one.",
                    "No record of that - do you want to tell me now?"]
MISSING_REPLY = ["I don't have {ep} {noun} saved.", "Nothing saved for {ep} {noun}, sorry.",
                 "I can't find {ep} {noun}. Want to add it?"]

TELL = ["remember that {t}", "note: {t}", "fyi {t}", "can you save this - {t}", "{t}. save that pls",
        "add to memory: {t}", "for future reference, {t}", "pls remember {t}", "{t} - can you remember that",
        "save: {t}", "make a note, {t}", "{t}"]
TELL_ACK = ["Got it, saved.", "Noted.", "Saved to memory.", "Done - I'll remember that.", "OK, added.",
            "Thanks, I've saved that.", "👍 saved"]

CLARIFY_ASK = ["Which one do you mean: {opts}?", "Do you mean {opts}?", "I've got a few - {opts}. Which one?",
               "There's more than one: {opts}. Which?"]
LIST_REPLY = ["You have {n} {noun}: {items}.", "I've got {n} {noun} saved: {items}.", "{items} - that's {n} {noun}."]
MORE_REPLY = ["Other things I have on {E}: {facts}", "Here's what else I know about {E}: {facts}",
              "Also: {facts}"]
PREFIX = ["", "", "", "", "Sure - ", "From your notes: ", "Let me check... ", "OK so ", "According to my notes, "]
SUFFIX = ["", "", "", "", "", " Anything else?"]
DATE_SUFFIX = [" Want me to set a reminder?", " Shall I add it to the calendar?"]

# Requests that act on a stored fact: the assistant uses the fact, then calls a tool.
ACTIONS = {
    "phone": (["text {eo} that I'm running late", "send {eo} a message saying happy birthday",
               "msg {eo} to say I'm outside", "whatsapp {eo} the address"], "messages.send"),
    "email": (["email {eo} the invoice", "send {eo} an email about friday", "forward the photos to {eo} by email"],
              "email.send"),
    "address": (["how long to drive to {ep} place", "directions to {ep}", "how do I get to {ep} from here"],
                "maps.directions"),
    "birthday": (["remind me a week before {ep} birthday", "set a reminder for {ep} birthday",
                  "add {ep} birthday to my calendar"], "reminders.create"),
    "deadline": (["put the {e} deadline in my calendar", "block time before {e} is due"], "calendar.create_event"),
    "renewal": (["remind me before {e} renews", "set a reminder to cancel {eo} before it renews"], "reminders.create"),
    "mot": (["add {ep} MOT to the calendar", "remind me to book {ep} MOT"], "reminders.create"),
    "expiry": (["remind me to renew {eo} a month before it expires"], "reminders.create"),
    "wifi": (["send the wifi details for {eo} to Jess", "share the wifi password for {eo} with Marco"],
             "messages.send"),
}
# Calling uses the same stored number; places are called, never texted happy birthday.
CALL = (["call {eo}", "ring {eo}", "phone {eo} for me", "give {eo} a ring"], "phone.call")
ACTION_REPLY = ["Done.", "Sent.", "OK, done - {v}.", "All set ({v}).", "Done, using {v}."]

SYSTEM_PROMPTS = [
    "You are Dexter, Alex's personal assistant. Use saved memories when they are relevant.",
    "You are a helpful assistant with access to the user's memory and tools. Be brief.",
    "Assistant persona: Dexter. Locale en-GB. Prefer saved notes over guesses.",
]
