"""Word lists and the hand-made core of the sample user's world (data only).

The user is Alex Morgan, a freelance designer in London with a family in Yorkshire, a rental flat on Maple Street,
client websites, devices, cars, pets and the usual accounts and subscriptions. ``CORE_ENTITIES`` is ordered so that
the first few already contain look-alikes (two laptops, the Maple Bakery site next to the Maple Street flat, three
Sams), because a small ``--scale`` keeps only a prefix of the list. Larger scales add invented entities built from
the pools below.
"""

USER_NAME = "Alex Morgan"
USER_EMAIL = "alex@alexmorgan.design"

# name, type, subtype, aliases, gender (f/m/None), attributes.
# Aliases shared by several entities ("Sam", "the laptop", "the Honda") are kept on purpose: they are how a person
# really refers to things, and they make word overlap ambiguous. Queries only use an alias where it names one thing.
CORE_ENTITIES = [
    ("Alex Morgan", "person", "self", ["me", "Alex"], "f", {"relation": "the user", "city": "London"}),
    ("MacBook Pro 14", "device", "laptop", ["the MacBook", "my work laptop", "the mac", "the laptop"], None,
     {"brand": "Apple", "model": "MacBook Pro 14-inch (M3 Pro)", "owner": "Alex"}),
    ("ThinkPad X1 Carbon", "device", "laptop", ["the ThinkPad", "the old laptop", "the Lenovo", "the laptop"], None,
     {"brand": "Lenovo", "model": "ThinkPad X1 Carbon Gen 9", "owner": "Alex"}),
    ("Linda Morgan", "person", "family", ["mum", "mom", "Linda"], "f",
     {"relation": "mother", "city": "Harrogate", "partner": "Robert", "kids": ["Alex", "Jess"]}),
    ("Maple Bakery website", "project", "website", ["the bakery site", "maplebakery.co.uk", "Jo's site"], None,
     {"client": "Jo Fielding", "kind": "client website", "domain": "maplebakery.co.uk"}),
    ("14 Maple Street flat", "place", "rental", ["the flat", "the Maple St flat", "the rental", "Maple Street"], None,
     {"kind": "buy-to-let flat", "city": "Leeds"}),
    ("Sam Patel", "person", "friend", ["Sam", "Sam P", "Sammy"], "m", {"relation": "friend from uni"}),
    ("Samantha Reyes", "person", "colleague", ["Sam", "Sam R", "Samantha", "Sam from work"], "f",
     {"relation": "colleague"}),
    ("Dad's Honda Civic", "vehicle", "car", ["dad's car", "the Civic", "the Honda"], None,
     {"make": "Honda", "model": "Civic 1.5 VTEC", "owner": "Dad"}),
    ("Honda warranty account", "account", "warranty", ["Honda warranty", "the warranty portal", "the Honda"], None,
     {"provider": "Honda UK"}),
    ("Robert Morgan", "person", "family", ["dad", "Rob", "Bob"], "m",
     {"relation": "father", "city": "Harrogate", "partner": "Linda", "kids": ["Alex", "Jess"]}),
    ("Netflix", "subscription", "streaming", ["netflix"], None, {"provider": "Netflix"}),
    ("Biscuit", "pet", "dog", ["the dog", "Bisc"], "m", {"species": "dog"}),
    ("UK passport", "document", "id", ["my passport", "the passport"], None, {"issuer": "HM Passport Office"}),
    ("Northwind Candles store", "project", "shop", ["the Shopify store", "the candle shop", "Northwind"], None,
     {"platform": "Shopify", "kind": "own online shop", "domain": "northwindcandles.com"}),
    ("Shopify plan", "subscription", "software", ["the Shopify subscription", "the Shopify bill"], None,
     {"provider": "Shopify"}),
    ("Jessica Morgan", "person", "family", ["Jess", "my sister", "Jessie"], "f",
     {"relation": "sister", "city": "Leeds", "partner": "Marco", "kids": ["Leo"]}),
    ("VW Golf", "vehicle", "car", ["my car", "the Golf", "the VW"], None, {"make": "Volkswagen", "owner": "Alex"}),
    ("Barclays current account", "account", "bank", ["Barclays", "the current account", "main account"], None,
     {"provider": "Barclays"}),
    ("Monzo joint account", "account", "bank", ["the joint account", "Monzo"], None, {"provider": "Monzo"}),
    ("Lisbon trip", "trip", "holiday", ["Lisbon", "the Portugal trip", "the May trip"], None, {"city": "Lisbon"}),
    ("Sam Okafor", "person", "accountant", ["Sam", "the accountant", "Sam O", "Mr Okafor"], "m",
     {"relation": "accountant"}),
    ("iPhone 15", "device", "phone", ["my phone", "the iPhone"], None, {"brand": "Apple", "owner": "Alex"}),
    ("Pixel 7", "device", "phone", ["the Pixel", "the Android", "the test phone"], None,
     {"brand": "Google", "owner": "Alex"}),
    ("Spotify Family", "subscription", "streaming", ["Spotify"], None, {"provider": "Spotify"}),
    ("Amazon Prime", "subscription", "shopping", ["Prime", "Amazon"], None, {"provider": "Amazon"}),
    ("AWS account", "account", "cloud", ["AWS", "Amazon Web Services", "Amazon"], None, {"provider": "Amazon"}),
    ("Miso", "pet", "cat", ["the cat"], "f", {"species": "cat"}),
    ("Dr Helen Clarke", "person", "doctor", ["my GP", "the doctor", "Dr Clarke", "Helen"], "f",
     {"relation": "GP"}),
    ("Riverside Dental", "place", "clinic", ["the dentist", "Riverside"], None,
     {"kind": "dental practice", "city": "London"}),
    ("Tom Becker", "person", "tradesperson", ["Tom", "the plumber", "Tom B"], "m", {"relation": "plumber"}),
    ("Tom Hughes", "person", "neighbour", ["Tom", "Tom next door", "the neighbour"], "m",
     {"relation": "neighbour"}),
    ("Priya Shah", "person", "manager", ["Priya", "my manager", "my boss"], "f",
     {"relation": "manager at the agency"}),
    ("Jo Fielding", "person", "client", ["Jo", "the bakery owner"], "f", {"relation": "client (Maple Bakery)"}),
    ("12 Oak Lane", "place", "home", ["home", "the house", "Oak Lane"], None, {"kind": "home", "city": "London"}),
    ("WeWork Moorgate", "place", "office", ["the office", "work", "WeWork"], None,
     {"kind": "coworking office", "city": "London"}),
    ("Dad's Dell XPS 13", "device", "laptop", ["dad's laptop", "the Dell", "the XPS", "the laptop"], None,
     {"brand": "Dell", "owner": "Dad"}),
    ("Synology NAS", "device", "nas", ["the NAS", "the Synology"], None, {"brand": "Synology"}),
    ("Eero router", "device", "router", ["the router", "the wifi", "the eero"], None, {"brand": "eero"}),
    ("Adobe Creative Cloud", "subscription", "software", ["Adobe", "Creative Cloud", "the Adobe sub"], None,
     {"provider": "Adobe"}),
    ("PureGym membership", "subscription", "gym", ["the gym", "PureGym", "gym membership"], None,
     {"provider": "PureGym"}),
    ("iCloud+ 200GB", "subscription", "storage", ["iCloud", "iCloud storage"], None, {"provider": "Apple"}),
    ("Aviva home insurance", "document", "insurance", ["home insurance", "the Aviva policy"], None,
     {"provider": "Aviva"}),
    ("Admiral car insurance", "document", "insurance", ["car insurance", "the Admiral policy"], None,
     {"provider": "Admiral", "covers": "VW Golf"}),
    ("Maple Street tenancy agreement", "document", "contract", ["the tenancy agreement", "the lease"], None,
     {"property": "14 Maple Street flat"}),
    ("Driving licence", "document", "id", ["my licence", "driving license"], None, {"issuer": "DVLA"}),
    ("Portfolio site", "project", "website", ["my portfolio", "alexmorgan.design", "the portfolio site"], None,
     {"kind": "personal website", "domain": "alexmorgan.design"}),
    ("Tax return 2023-24", "project", "admin", ["the tax return", "self assessment"], None,
     {"kind": "self assessment"}),
    ("HMRC account", "account", "government", ["HMRC", "Government Gateway", "the tax account"], None,
     {"provider": "HMRC"}),
    ("PayPal", "account", "payments", ["paypal"], None, {"provider": "PayPal"}),
    ("Jess's wedding", "trip", "event", ["the wedding", "Jess and Marco's wedding"], None, {"city": "York"}),
    ("Rose Morgan", "person", "family", ["gran", "nana", "Grandma Rose"], "f",
     {"relation": "grandmother", "city": "York"}),
    ("Leo Morgan", "person", "family", ["Leo", "my nephew"], "m",
     {"relation": "nephew", "city": "Leeds", "child": True}),
    ("Bella Napoli", "place", "restaurant", ["the Italian place", "Bella's"], None,
     {"kind": "restaurant", "city": "London"}),
    ("Kitchen renovation", "project", "home", ["the kitchen", "the kitchen reno", "the renovation"], None,
     {"kind": "home improvement"}),
    ("VanMoof S5", "vehicle", "bike", ["the bike", "the e-bike", "the VanMoof"], None, {"make": "VanMoof"}),
    ("Mum's house", "place", "family", ["mum's", "the Harrogate house"], None, {"city": "Harrogate"}),
    ("Google Workspace", "subscription", "software", ["Workspace", "G Suite"], None, {"provider": "Google"}),
    ("Marco Rossi", "person", "family", ["Marco", "Jess's fiance"], "m",
     {"relation": "sister's fiance", "city": "Leeds", "partner": "Jess"}),
    ("Cotswolds weekend", "trip", "holiday", ["the cottage trip", "the Cotswolds"], None, {"city": "Bibury"}),
    ("Bakery ordering app", "project", "app", ["the ordering app", "the bakery app"], None,
     {"client": "Jo Fielding", "kind": "mobile app"}),
]

# Groups a user asks about as a whole ("what laptops do I have?") and ambiguous words ("the laptop", "Sam") that
# make the assistant ask which one. A group is only used when no invented entity could also belong to it.
CORE_GROUPS = [
    {"members": ["MacBook Pro 14", "ThinkPad X1 Carbon"], "noun": "laptops",
     "asks": ["what laptops do I have", "which laptops have I got", "list my laptops", "remind me which laptops I own"],
     "clarify": [("how much was the laptop", "price"), ("when did I get the laptop", "purchased"),
                 ("whats the serial on the laptop", "serial"), ("is the laptop still under warranty", "warranty")]},
    {"members": ["iPhone 15", "Pixel 7"], "noun": "phones",
     "asks": ["what phones do I have", "which phones have I got", "what phones am I using at the moment"]},
    {"members": ["VW Golf", "Dad's Honda Civic"], "noun": "cars",
     "asks": ["what cars do you have saved", "which cars do I look after"],
     "clarify": [("when is the MOT due on the car", "mot"), ("what's the reg of the car", "reg")]},
    {"members": ["Netflix", "Spotify Family", "Amazon Prime", "Shopify plan", "Adobe Creative Cloud",
                 "PureGym membership", "iCloud+ 200GB", "Google Workspace"], "noun": "subscriptions",
     "asks": ["what subscriptions do I pay for", "list all my subscriptions", "which subs am I paying for",
              "what am I subscribed to"]},
    {"members": ["Netflix", "Spotify Family"], "noun": "streaming services",
     "asks": ["which streaming services am I paying for", "what streaming subs do I have"]},
    {"members": ["Biscuit", "Miso"], "noun": "pets", "asks": ["what pets do I have", "tell me about my pets"]},
    {"members": ["Maple Bakery website", "Portfolio site"], "noun": "websites",
     "asks": ["what websites am I working on", "which sites am I looking after", "list my website projects"]},
    {"members": ["Aviva home insurance", "Admiral car insurance"], "noun": "insurance policies",
     "asks": ["what insurance policies have I got", "which insurance do I have"]},
    {"members": ["Barclays current account", "Monzo joint account"], "noun": "bank accounts",
     "asks": ["what bank accounts do I have", "which bank accounts have you got on file"]},
    {"members": ["Sam Patel", "Samantha Reyes", "Sam Okafor"], "noun": "Sams",
     "asks": ["which Sams do I know", "how many Sams are in my contacts"],
     "clarify": [("what's Sam's number", "phone"), ("when is Sam's birthday", "birthday"),
                 ("what's Sam's email", "email"), ("where does Sam live", "address"), ("text Sam", "phone")]},
    {"members": ["Tom Becker", "Tom Hughes"], "noun": "Toms", "asks": ["which Toms have you got saved"],
     "clarify": [("what's Tom's number", "phone"), ("whats toms email", "email"), ("call tom", "phone")]},
]

FIRST_NAMES_F = [
    "Amelia", "Olivia", "Isla", "Ava", "Mia", "Grace", "Sophie", "Chloe", "Lucy", "Hannah", "Ella", "Freya", "Ruby",
    "Evie", "Poppy", "Zara", "Aisha", "Fatima", "Mei", "Yuki", "Ananya", "Sofia", "Elena", "Ingrid", "Nadia", "Leah",
    "Rachel", "Megan", "Katie", "Laura", "Emma", "Charlotte", "Harriet", "Imogen", "Naomi", "Rosa", "Alice", "Beth",
    "Carmen", "Dina", "Esther", "Gemma", "Holly", "Iris", "Joy", "Kemi", "Lola", "Maya", "Nina", "Orla", "Paula",
    "Queenie", "Rhiannon", "Tara", "Uma", "Vera", "Wendy", "Yasmin", "Zoe", "Niamh", "Siobhan", "Priyanka", "Hui",
]
FIRST_NAMES_M = [
    "Oliver", "George", "Harry", "Noah", "Jack", "Leo", "Oscar", "Charlie", "Jacob", "Freddie", "Alfie", "Arthur",
    "Henry", "Theo", "Archie", "Joshua", "James", "Ethan", "Daniel", "Ben", "Luke", "Ryan", "Adam", "Kieran",
    "Rohan", "Arjun", "Omar", "Yusuf", "Kwame", "Chen", "Hiro", "Mateo", "Lars", "Piotr", "Ivan", "Felix", "Hugo",
    "Callum", "Dylan", "Euan", "Finn", "Gareth", "Idris", "Jamal", "Kofi", "Liam", "Nathan", "Owen", "Patrick",
    "Rhys", "Stefan", "Tobias", "Umar", "Victor", "Will", "Xavier", "Zain", "Declan", "Ciaran", "Wei", "Raj",
]
SURNAMES = [
    "Smith", "Jones", "Williams", "Brown", "Taylor", "Davies", "Evans", "Wilson", "Thomas", "Johnson", "Roberts",
    "Walker", "Wright", "Thompson", "White", "Green", "Hall", "Wood", "Harris", "Martin", "Jackson", "Clarke",
    "Lewis", "Hill", "Cooper", "Ward", "Turner", "Khan", "Ali", "Ahmed", "Singh", "Kaur", "Nguyen", "Chen", "Wang",
    "Kowalski", "Novak", "Schmidt", "Müller", "García", "Fernández", "Silva", "Costa", "Murphy", "O'Brien", "Kelly",
    "Byrne", "MacDonald", "Campbell", "Stewart", "Reid", "Fraser", "Hussain", "Begum", "Mensah", "Adeyemi", "Okoro",
    "Nakamura", "Tanaka", "Kim", "Park", "Andersson", "Larsen", "Dubois", "Moreau", "Rossi", "Ricci", "Bianchi",
    "Horvat", "Popescu", "Ivanova", "Cohen", "Levi", "Baker", "Fisher", "Mason", "Carter", "Parker", "Bell", "Moss",
    "Fox", "Lane", "Holt", "Pike", "Shaw", "Burke", "Doyle", "Quinn", "Ellis", "Lloyd", "Price", "Hughes", "Morris",
]
NICKNAMES = {
    "Oliver": "Ollie", "Charlotte": "Charlie", "Joshua": "Josh", "Daniel": "Dan", "Benjamin": "Ben", "James": "Jim",
    "Alexander": "Sasha", "Katherine": "Kate", "Elizabeth": "Liz", "Rebecca": "Becca", "Samuel": "Sammy",
    "Thomas": "Tommy", "William": "Will", "Harriet": "Hattie", "Nathan": "Nate", "Archie": "Arch", "Freya": "Frey",
    "Patrick": "Paddy", "Theo": "Teddy", "Megan": "Meg", "Amelia": "Millie", "Rhiannon": "Rhi", "Gareth": "Gaz",
}
# Relations for invented people, with the context word used in aliases ("Kemi from yoga").
RELATIONS = [
    ("friend", "friend from uni", "uni"), ("friend", "friend from yoga", "yoga"), ("colleague", "colleague", "work"),
    ("client", "client", "the agency"), ("family", "cousin", "the family"), ("friend", "old school friend", "school"),
    ("neighbour", "neighbour at number 9", "next door"), ("tradesperson", "electrician", "the electrics"),
    ("friend", "climbing partner", "climbing"), ("colleague", "freelance developer", "the dev team"),
    ("client", "prospective client", "the pitch"), ("friend", "book club friend", "book club"),
    ("tradesperson", "decorator", "the decorating"), ("family", "aunt", "the family"),
    ("friend", "running buddy", "parkrun"),
]

CITIES = [
    ("Leeds", "LS"), ("York", "YO"), ("Harrogate", "HG"), ("Manchester", "M"), ("Bristol", "BS"), ("Brighton", "BN"),
    ("Sheffield", "S"), ("Nottingham", "NG"), ("Edinburgh", "EH"), ("Glasgow", "G"), ("Cardiff", "CF"),
    ("Norwich", "NR"), ("Oxford", "OX"), ("Cambridge", "CB"), ("Bath", "BA"), ("Exeter", "EX"), ("Liverpool", "L"),
    ("Newcastle", "NE"), ("Durham", "DH"), ("Reading", "RG"), ("Leicester", "LE"), ("Hull", "HU"), ("Derby", "DE"),
    ("London", "N"), ("London", "SE"), ("London", "E"),
]
TRAVEL_CITIES = [
    "Lisbon", "Porto", "Barcelona", "Madrid", "Paris", "Amsterdam", "Berlin", "Copenhagen", "Prague", "Vienna",
    "Rome", "Florence", "Dublin", "Edinburgh", "Reykjavik", "Athens", "Budapest", "Krakow", "Seville", "Nice",
    "Tokyo", "Kyoto", "New York", "Montreal", "Marrakech", "Split", "Valencia", "Bologna", "Oslo", "Stockholm",
]
STREETS = [
    "Birch Close", "Station Road", "Church Lane", "Victoria Road", "Park Avenue", "Mill Lane", "Kings Road",
    "Queen Street", "Elm Grove", "Chapel Street", "Highfield Road", "The Crescent", "Orchard Way", "Manor Road",
    "Westfield Drive", "Albert Terrace", "Cedar Court", "Riverside Walk", "Hawthorn Avenue", "Beech Road",
    "Granby Street", "Cromwell Road", "Lister Lane", "Ashgrove", "Windsor Place", "Clarence Road", "Hyde Park Road",
]
COMPANIES = [
    "Brightwave Studio", "Northlight Digital", "Fielding & Co", "Kestrel Analytics", "Harbour Lane Coffee",
    "Bluebell Florists", "Copperfield Joinery", "Oakridge Dental", "Quill & Ink", "Tessellate", "Moorland Outdoor",
    "Little Fox Nursery", "Greenhouse Media", "Atlas Logistics", "Pinecone Games", "Saltmarsh Ceramics",
    "Redbrick Architects", "Lumen Health", "Wild Oats Deli", "Meridian Travel", "Foundry Fitness", "Ember Bakehouse",
]
PROJECT_WORDS = [
    "Harbour", "Willow", "Copper", "Lantern", "Meadow", "Juniper", "Saffron", "Granite", "Marigold", "Orchard",
    "Foxglove", "Bramble", "Cobalt", "Thistle", "Hazel", "Kestrel", "Mulberry", "Pebble", "Quarry", "Rowan",
    "Sorrel", "Tamarind", "Umber", "Verity", "Wren", "Yarrow", "Aspen", "Beacon", "Cinder", "Driftwood",
]
PROJECT_KINDS = [
    ("website", "site", "website"), ("website", "site", "landing page"), ("shop", "store", "online shop"),
    ("app", "app", "booking app"), ("website", "site", "blog"), ("home", "project", "garden redesign"),
    ("admin", "project", "grant application"), ("app", "app", "loyalty app"), ("website", "site", "rebrand"),
]
DEVICE_MODELS = [
    ("laptop", "Dell", "XPS 15"), ("laptop", "HP", "Spectre x360"), ("laptop", "Framework", "Laptop 13"),
    ("laptop", "ASUS", "Zenbook 14"), ("phone", "Samsung", "Galaxy S23"), ("phone", "Apple", "iPhone 12 mini"),
    ("tablet", "Apple", "iPad Air"), ("tablet", "Samsung", "Galaxy Tab S9"), ("camera", "Fujifilm", "X-T4"),
    ("camera", "Sony", "A7 III"), ("watch", "Garmin", "Forerunner 255"), ("watch", "Apple", "Watch SE"),
    ("tv", "LG", "OLED C2"), ("console", "Nintendo", "Switch OLED"), ("console", "Sony", "PS5"),
    ("headphones", "Sony", "WH-1000XM5"), ("ereader", "Kobo", "Clara 2E"), ("printer", "Brother", "HL-L2350DW"),
    ("speaker", "Sonos", "Era 100"), ("drone", "DJI", "Mini 3"), ("monitor", "Dell", "U2723QE"),
]
VEHICLE_MODELS = [
    ("car", "Toyota", "Yaris Hybrid"), ("car", "Ford", "Fiesta"), ("car", "Kia", "Niro EV"),
    ("car", "Skoda", "Octavia"),
    ("van", "Ford", "Transit Custom"), ("motorbike", "Honda", "CB500F"), ("bike", "Brompton", "C Line"),
    ("car", "Nissan", "Leaf"), ("scooter", "Vespa", "Primavera 125"), ("car", "Mini", "Cooper"),
]
SERVICES = [
    ("subscription", "streaming", "Disney+"), ("subscription", "streaming", "YouTube Premium"),
    ("subscription", "news", "The Guardian digital"), ("subscription", "software", "1Password Families"),
    ("subscription", "software", "Figma Professional"), ("subscription", "software", "Notion Plus"),
    ("subscription", "storage", "Dropbox Plus"), ("subscription", "news", "The Economist"),
    ("subscription", "fitness", "Strava"), ("subscription", "software", "Canva Pro"),
    ("subscription", "software", "Microsoft 365 Family"), ("subscription", "streaming", "Apple TV+"),
    ("subscription", "food", "HelloFresh"), ("subscription", "software", "ChatGPT Plus"),
    ("account", "bank", "Nationwide savings"), ("account", "bank", "Starling business account"),
    ("account", "payments", "Wise"), ("account", "utility", "Octopus Energy"), ("account", "utility", "Thames Water"),
    ("account", "cloud", "DigitalOcean"), ("account", "shopping", "eBay"), ("account", "utility", "BT broadband"),
    ("account", "investments", "Vanguard ISA"), ("account", "loyalty", "Nectar card"),
]
PLACE_NAMES = [
    ("restaurant", "Dishoom Kings Cross"), ("restaurant", "The Ivy"), ("restaurant", "Honest Burgers"),
    ("restaurant", "Wahaca"), ("clinic", "Park Road Vets"), ("clinic", "Boots Opticians"), ("shop", "Timpson"),
    ("gym", "The Climbing Hangar"), ("clinic", "City Physio"), ("shop", "Screwfix"), ("restaurant", "Pho"),
    ("office", "Impact Hub"), ("shop", "Halfords"), ("restaurant", "Côte Brasserie"), ("clinic", "Leeds General"),
]
PET_NAMES = ["Pepper", "Luna", "Milo", "Hazel", "Mochi", "Ziggy", "Bean", "Nala", "Olive", "Dexter", "Tofu", "Rolo"]
PET_BREEDS = {
    "dog": ["cocker spaniel", "labrador", "border terrier", "whippet", "cockapoo", "greyhound"],
    "cat": ["tabby", "British shorthair", "ragdoll", "Bengal", "black moggy"],
    "rabbit": ["lop-eared rabbit", "Netherland dwarf"],
}
DOCUMENT_NAMES = [
    ("insurance", "Pet insurance (Petplan)"), ("insurance", "Travel insurance (annual)"),
    ("certificate", "Birth certificate"), ("contract", "Freelance contract"), ("certificate", "EPC certificate"),
    ("insurance", "Contents insurance"), ("contract", "Mobile phone contract"), ("id", "Railcard"),
    ("certificate", "Gas safety certificate"), ("contract", "Gym contract"),
]
TRIP_NAMES = [
    ("holiday", "{city} trip"), ("event", "{name}'s 40th"), ("holiday", "{city} long weekend"),
    ("event", "{word} conference"), ("event", "{name}'s hen do"), ("holiday", "Christmas in {city}"),
]

FOODS = ["nuts", "shellfish", "gluten", "dairy", "mushrooms", "coriander", "eggs", "pork", "spicy food", "olives"]
LIKES = [
    "gardening", "jazz records", "Lego", "trail running", "board games", "gin", "F1", "cooking", "birdwatching",
    "crime novels", "vintage cameras", "pottery", "yoga", "wine", "football (Leeds United)", "knitting", "sushi",
]
GIFTS = [
    "a Le Creuset pan", "concert tickets", "a cashmere scarf", "a Kindle", "a spa voucher", "a cookbook",
    "a Lego set", "a plant", "a framed print", "a bottle of Hendrick's", "AirPods", "a hamper", "a pottery class",
    "a watch strap", "a photo book", "theatre tickets", "a bike helmet", "a coffee grinder",
]
KID_GIFTS = ["a Lego set", "a football", "a Harry Potter book set", "a scooter", "a science kit", "Pokemon cards",
             "a kite", "a drawing tablet", "a dinosaur book"]
OCCASIONS = {"f": ["birthday", "Christmas", "Mother's Day", "housewarming", "graduation"],
             "m": ["birthday", "Christmas", "Father's Day", "housewarming", "graduation"]}
SHOPS = ["Apple Store", "John Lewis", "Currys", "Amazon", "Argos", "eBay (used)", "Back Market", "Costco"]
STORES = ["Amazon", "John Lewis", "Argos", "IKEA", "Decathlon", "Etsy", "eBay", "Lakeland", "Dunelm", "Screwfix"]
GARAGES = ["Kwik Fit", "Halfords Autocentre", "the Honda dealer in Harrogate", "Dave's Motors", "Arnold Clark"]
HOSTS = ["Netlify", "Vercel", "SiteGround", "DigitalOcean", "Shopify", "AWS Lightsail", "Cloudflare Pages"]
REGISTRARS = ["Namecheap", "GoDaddy", "123-reg", "Cloudflare", "Gandi"]
STACKS = ["WordPress", "Next.js", "Astro", "Shopify Liquid", "Webflow", "Django", "React Native", "Flutter", "Eleventy"]
AIRLINES = [("TAP", "TP"), ("easyJet", "U2"), ("British Airways", "BA"), ("Ryanair", "FR"), ("Jet2", "LS")]
AIRPORTS = ["Heathrow T2", "Gatwick North", "Stansted", "Leeds Bradford", "Manchester T1", "Luton"]
HOTELS = ["Memmo Alfama", "Hotel Avenida", "The Yard", "Premier Inn", "a cottage via Airbnb", "Casa do Príncipe"]
CARDS = ["the Amex", "the Barclays debit card", "the Monzo card", "PayPal", "the business Starling card"]
ISSUES = {
    "computer": [("battery", "battery drains overnight"), ("screen", "flickering screen"),
                 ("keyboard", "sticky 'e' key"), ("wifi", "keeps dropping wifi"),
                 ("charging", "charging port is loose"),
                 ("fan", "fan is really loud"), ("speaker", "crackling speaker"), ("camera", "camera won't focus"),
                 ("update", "stuck on an update loop"), ("bluetooth", "won't pair with headphones")],
    "network": [("reboots", "random reboots at night"), ("5GHz", "5GHz band is really slow"),
                ("update", "firmware update failed"), ("drive", "drive 3 showing warnings"),
                ("fan", "fan noise"), ("backup", "Hyper Backup job keeps failing"),
                ("dns", "DNS errors on guest wifi")],
    "other": [("battery", "battery won't hold charge"), ("pairing", "won't pair with the phone"),
              ("screen", "dead pixels in the corner"), ("buttons", "power button sticks"),
              ("update", "stuck on an update"), ("connection", "keeps disconnecting")],
}
ACCESSORIES = [
    "USB-C hub", "case", "screen protector", "charger", "sleeve", "stand", "mouse", "dock", "SD card", "cable",
]
DECISIONS = {
    "web": [("hosting", "move hosting to {host}"), ("fonts", "use Inter for body text and Fraunces for headings"),
            ("payments", "use Stripe instead of PayPal"), ("launch", "push the launch back two weeks"),
            ("photos", "reshoot the product photos in daylight"), ("pricing", "add a 10% first-order discount"),
            ("newsletter", "switch the newsletter to Buttondown"), ("analytics", "drop Google Analytics for Plausible"),
            ("colours", "keep the sage green from the old logo"), ("copy", "get Jess to proofread the About page"),
            ("scope", "leave the blog out of phase one"), ("login", "allow guest checkout, no accounts")],
    "home": [("worktops", "go with oak worktops, not quartz"), ("layout", "keep the sink under the window"),
             ("builder", "hire Copperfield Joinery"), ("budget", "cap spending at the quote plus 10%"),
             ("floor", "use the same tiles as the hallway"), ("lights", "add under-cabinet LEDs"),
             ("appliances", "keep the old fridge for now")],
    "admin": [("expenses", "claim the laptop as a business expense"), ("accountant", "let Sam O file it this year"),
              ("deadline", "file by the end of December, not January"), ("pension", "top up the pension before April"),
              ("mileage", "claim mileage at 45p per mile")],
}
TASKS = {
    "web": ["set up SSL", "upload the new photos", "fix the mobile menu", "renew the domain",
            "back up the database", "write the privacy policy", "add the cookie banner", "update the opening hours",
            "set up redirects", "test checkout on iPhone", "compress the images", "add the FAQ page"],
    "home": ["book the electrician", "order the samples", "measure the windows", "get three quotes",
             "pick the tiles", "clear the old units", "order the skip"],
    "admin": ["send the invoice", "collect the P60", "download the bank statements", "list the expenses",
              "send the quote", "upload the receipts"],
}
COST_ITEMS = {
    "web": ["stock photos", "the theme licence", "fonts", "the logo redesign", "a plugin licence", "printing",
            "the SSL certificate", "copywriting", "user testing", "the domain", "app store fee"],
    "home": ["the tiler", "worktops", "paint", "the sink", "the skip", "cabinet doors", "the electrician"],
    "admin": ["the accountant's fee", "filing software", "the late filing penalty", "postage"],
}
MEET_PLACES = ["Bella Napoli", "Dishoom Kings Cross", "Honest Burgers", "Pret by the station", "the Brunswick",
               "Monmouth Coffee", "Wahaca", "the park cafe", "Ottolenghi Spitalfields", "the Crown and Anchor"]
APPOINTMENT_REASONS = {
    "doctor": ["annual review", "knee pain", "blood test results", "repeat prescription", "mole check"],
    "accountant": ["tax questions", "year-end accounts", "VAT registration", "expenses review"],
    "tradesperson": ["quote for the boiler", "fixing the shower", "radiator bleed", "new outside tap"],
}
PRICE_RANGE = {
    "laptop": (650, 2600), "phone": (280, 1200), "nas": (300, 900), "router": (90, 320), "tablet": (300, 900),
    "camera": (500, 2100), "watch": (150, 450), "tv": (800, 2000), "console": (250, 480), "headphones": (150, 380),
    "ereader": (100, 180), "printer": (90, 250), "speaker": (150, 450), "drone": (300, 700), "monitor": (300, 700),
}
RECOMMENDATIONS = [
    "Piranesi", "The Bear", "Slow Horses", "a dentist in Headingley", "a cheap MOT garage", "Bella Napoli",
    "the Wainwright walk", "Monmouth Coffee", "Shogun", "a good physio", "Plausible analytics", "Project Hail Mary",
]
NEWS = [
    ("job", "she's starting a new job at {company}", "he's starting a new job at {company}"),
    ("move", "she's thinking of moving to {city}", "he's thinking of moving to {city}"),
    ("marathon", "she's training for the {city} half marathon", "he's training for the {city} half marathon"),
    ("baby", "she's expecting a baby in {month}", "his partner is expecting a baby in {month}"),
    ("house", "she's selling her flat", "he's selling his flat"),
    ("knee", "she hurt her knee skiing", "he hurt his knee playing five-a-side"),
    ("course", "she's doing an evening course in Spanish", "he's doing a night course in carpentry"),
    ("dog", "she's getting a puppy", "he's getting a puppy"),
]
ACTIVITIES = [
    "food tour", "tram 28 tour", "day trip to Sintra", "fado dinner", "surf lesson", "wine tasting",
    "cooking class", "museum tickets", "boat trip", "spa session", "guided walk", "bike hire",
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
BOOKS = [
    "Tomorrow, and Tomorrow, and Tomorrow", "Project Hail Mary", "The Overstory", "Klara and the Sun", "Piranesi",
    "Lessons in Chemistry", "Sapiens", "Atomic Habits", "Shuggie Bain", "The Thursday Murder Club", "Circe",
]
PURCHASES = [
    "standing desk", "office chair", "air fryer", "running shoes", "rain jacket", "desk lamp", "dog bed",
    "cat flap", "monitor arm", "yoga mat", "blender", "kettle", "duvet", "bike lights", "walking boots",
    "coffee machine", "printer ink", "hiking backpack", "wall shelves", "curtains", "suitcase", "phone tripod",
    "mechanical keyboard", "noise cancelling headphones", "garden hose", "paint samples", "rug", "pillows",
    "kitchen scales", "wine glasses", "toolbox", "smoke alarm", "bookcase", "plant pots", "dehumidifier",
]
SHOWS = [
    "Succession", "The Bear", "Oppenheimer", "Barbie", "Slow Horses", "Blue Eye Samurai", "Severance",
    "Past Lives", "Shogun", "Baby Reindeer", "Dune Part Two", "The Crown", "Poor Things", "Fallout", "Ripley",
]
IDEAS = [
    ("newsletter", "monthly newsletter for the candle shop with a discount code"),
    ("garden", "raised beds along the back fence"), ("side project", "a tiny app to track plant watering"),
    ("birthday", "surprise picnic for Jess's birthday"), ("pricing", "offer website care plans at £49/month"),
    ("kitchen", "open shelving instead of wall units"), ("holiday", "train to Italy instead of flying"),
    ("portfolio", "case study on the bakery rebrand"), ("savings", "move the ISA to a cheaper platform"),
    ("fitness", "run-commute to the office twice a week"), ("gift", "photo book of Biscuit for Mum"),
    ("podcast", "podcast about small business design"), ("workshop", "Figma workshop for local makers"),
    ("wedding", "playlist for Jess's wedding from the group chat"), ("storage", "move old photos to the NAS"),
]
# Dated one-line notes, the catch-all of a real assistant memory ("{date}: the NAS - drive 2 replaced").
LOG_NOTES = {
    "person": ["seemed a bit down, check in soon", "sent the photos from the weekend", "said thanks for the flowers",
               "is off work until Monday", "asked for the spare key back", "wants the recipe for the lemon cake",
               "borrowed the drill", "is back from holiday", "has a new haircut, looks great",
               "offered to help with the move", "wants to go to the Hockney exhibition", "forgot my birthday, lol"],
    "project": ["client approved the homepage", "found a bug in the contact form", "sent the draft for review",
                "waiting on the logo files", "scope creep - keep an eye on it", "backup restored fine",
                "client paid the deposit", "moved the kickoff to next week", "shared the Figma link",
                "got feedback from Jess", "started the mobile layout", "tidied the Trello board"],
    "device": ["battery health at 87%", "cleaned the keyboard", "reset to factory settings", "new case arrived",
               "fan got loud again", "freed up 40GB", "moved it to the study", "lent it to Leo for the weekend",
               "updated all the apps", "screen protector cracked"],
    "vehicle": ["washed and hoovered", "warning light came on briefly", "topped up the screenwash",
                "new air freshener", "noticed a scratch on the rear bumper", "dashcam SD card full",
                "checked the oil, fine", "tyre looked a bit low"],
    "account": ["got a suspicious email claiming to be from them", "updated the address", "closed the old card",
                "set up a new payee", "statement looked odd, check it", "turned on paperless",
                "got a new card in the post", "chatted to support about fees"],
    "subscription": ["haven't used it this month", "shared the login with Jess", "they emailed about a new plan",
                     "the app keeps logging me out", "got a loyalty discount", "changed the email on it"],
    "pet": ["ate a sock, seems fine", "loved the new toy", "was sick in the car", "met the neighbour's dog",
            "slept all day", "got stuck up the tree", "did great at the groomer's", "ran off at the park, came back"],
    "place": ["front door sticking again", "smoke alarm beeping - battery", "new neighbours moved in",
              "parcel left with next door", "heating came on at 6am, change timer", "roof tile loose after the storm",
              "bathroom fan rattling", "damp patch in the corner of the bedroom"],
    "venue": ["really busy on Fridays", "loved the new menu", "card only now", "new receptionist, very helpful",
              "parking is a nightmare", "prices went up", "booked via the app this time"],
    "document": ["checked it's still in date", "scanned a copy to Drive", "the address on it is the old one",
                 "needs a new photo next time", "original is in the fireproof box"],
    "trip": ["looked at restaurants", "checked the weather forecast", "exchanged some currency",
             "downloaded offline maps", "sent the itinerary to Mum", "bought travel adaptors"],
}
