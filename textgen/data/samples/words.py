"""The word lists and fixed tables the samples draw from, apart from the code that draws.

Plain constants, nothing read at run time. The generators pick with `random.Random.choice`, so the
order of every tuple (and of every dict's keys) is part of each sample's output: append to a list
only knowing that it changes the bytes of that sample for every seed.
"""

from __future__ import annotations

# --------------------------------------------------------------------------------------------------
# reverse

LETTERS = "abcdefghijklmnopqrstuvwxyz"

# --------------------------------------------------------------------------------------------------
# calendar (dates and support)

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# --------------------------------------------------------------------------------------------------
# number words (numbers, and the ordinal days of dates)

UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen")
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
ORDINAL_UNITS = ("", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
                 "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
                 "sixteenth", "seventeenth", "eighteenth", "nineteenth")
ORDINAL_TENS = {20: "twentieth", 30: "thirtieth"}

# --------------------------------------------------------------------------------------------------
# support

FIRST_NAMES = ("Anna", "Ben", "Chloe", "David", "Emma", "Farah", "George", "Hannah", "Ivan",
               "Jasmine", "Kenji", "Laura", "Mohammed", "Nina", "Oscar", "Priya", "Quentin",
               "Rosa", "Samuel", "Tara", "Umar", "Valerie", "William", "Yara", "Zoe",
               "Jos\u00e9", "Zo\u00eb", "Bj\u00f6rn", "Ren\u00e9e", "A\u00efsha")
LAST_NAMES = ("Adams", "Brown", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ito",
              "Jones", "Kowalski", "Lopez", "Murphy", "Nguyen", "Okafor", "Patel", "Quinn",
              "Rossi", "Smith", "Tanaka", "Walsh", "Young", "M\u00fcller", "N\u00fa\u00f1ez",
              "\u00d8degaard", "Fran\u00e7ois")
PRODUCTS = ("Nimbus Desk Lamp", "Orion Hiking Backpack", "Lumen Smart Bulb", "Tidal Water Bottle",
            "Aster Wool Scarf", "Quill Fountain Pen", "Harbor Rain Jacket", "Ember Cast Iron Pan",
            "Pebble Bluetooth Speaker", "Juniper Yoga Mat", "Cobalt Coffee Grinder",
            "Maple Cutting Board", "Zephyr Desk Fan", "Atlas Travel Pillow",
            "Sable Leather Wallet", "Fern Plant Pot", "Vega Wireless Mouse", "Drift Beach Towel",
            "Summit Trail Shoes", "Willow Tea Set")
STORES = ("Riverton", "Oakdale", "Brookfield", "Maplewood", "Ashford", "Fairhaven", "Kingsbridge",
          "Westmere", "Elmstead", "Northgate")
STREETS = ("Willow Lane", "High Street", "Station Road", "Mill Road", "Church Street",
           "Oak Avenue", "Park Road", "Victoria Road", "Green Lane", "King Street", "Elm Close",
           "Harbour View")
TOWNS = ("Springfield", "Riverton", "Lakeside", "Hillcrest", "Greenwood", "Seabrook", "Millbrook",
         "Stonebridge")
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
EMAIL_HANDLES = ("sunny", "river", "maple", "pixel", "tiger", "comet", "lotus", "orbit", "cedar",
                 "otter", "ember", "frost", "nova", "quartz", "willow", "zephyr")
# The letters of order numbers like "#A1234-56" (no I, O or Q).
ORDER_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
# Opening hours: the ground truth is a function of the day.
OPENING_HOURS = {"Monday": "9 am to 6 pm", "Tuesday": "9 am to 6 pm", "Wednesday": "9 am to 6 pm",
                 "Thursday": "9 am to 8 pm", "Friday": "9 am to 8 pm",
                 "Saturday": "10 am to 5 pm", "Sunday": "11 am to 4 pm"}

# Several paraphrases per intent; their slots ({order}, {email}, ...) are filled from the question.
SUPPORT_QUESTIONS: dict[str, tuple[str, ...]] = {
    "where_is_order": (
        "Where is my order {order}?",
        "I placed order {order} last week and it still hasn't arrived.",
        "Can you tell me the status of order {order}?",
        "My order {order} hasn't shown up yet. Where is it?",
        "Any update on order {order}?",
    ),
    "cancel_order": (
        "Please cancel order {order}.",
        "I'd like to cancel my order {order}.",
        "Can I still cancel order {order}? I don't need it anymore.",
        "Cancel {order} please, I ordered it by mistake.",
    ),
    "refund_status": (
        "What is the status of my refund of {amount} for order {order}?",
        "I returned order {order} and I'm still waiting for my {amount} refund.",
        "When will I get the {amount} back for order {order}?",
        "Has the refund for order {order} ({amount}) been processed?",
    ),
    "change_address": (
        "Can you change the delivery address for order {order} to {address}?",
        "I've moved. Please send order {order} to {address} instead.",
        "Please update the shipping address on {order} to {address}.",
        "Wrong address on order {order}! It should go to {address}.",
    ),
    "reset_password": (
        "I forgot my password. My email is {email}.",
        "How do I reset my password? My account is {email}.",
        "I can't log in with {email}. Can you reset my password?",
        "Please send a password reset link to {email}.",
    ),
    "change_email": (
        "Please change my email from {email} to {email2}.",
        "I'd like to update my account email from {email} to {email2}.",
        "My old email {email} no longer works. Can you switch it to {email2}?",
        "Replace {email} with {email2} on my account, please.",
    ),
    "opening_hours": (
        "What are the opening hours of your {store} store on {day}?",
        "Is the {store} store open on {day}?",
        "When does your {store} shop open on {day}?",
        "What time can I visit the {store} store on {day}?",
    ),
    "return_policy": (
        "Can I return the {product}?",
        "What is your return policy for the {product}?",
        "I don't like the {product} I bought. Can I send it back?",
        "How many days do I have to return a {product}?",
    ),
    "delivery_date": (
        "I need order {order} by {date}. Will it arrive in time?",
        "Will order {order} be delivered before {date}?",
        "Can you make sure {order} gets here by {date}?",
        "Is order {order} going to arrive by {date}?",
    ),
    "wrong_item": (
        "I ordered the {product} but received the {product2} in order {order}.",
        "Order {order} came with the {product2} instead of the {product}.",
        "You sent me the {product2} in order {order}, but I ordered the {product}.",
        "Wrong item in order {order}: I got the {product2}, not the {product}.",
    ),
}
# One answer template per intent ({hours} comes from OPENING_HOURS).
SUPPORT_ANSWERS: dict[str, str] = {
    "where_is_order": "Your order {order} has shipped and is on its way. You will get an email "
                      "with the tracking link.",
    "cancel_order": "I have cancelled order {order}. Any payment will be returned to your "
                    "original payment method.",
    "refund_status": "Your refund of {amount} for order {order} has been approved and should "
                     "reach your account within 5 business days.",
    "change_address": "Done: the delivery address for order {order} is now {address}.",
    "reset_password": "I have sent a password reset link to {email}. It expires in 24 hours.",
    "change_email": "Your account email has been changed from {email} to {email2}. A "
                    "confirmation has been sent to {email2}.",
    "opening_hours": "Our {store} store is open from {hours} on {day}.",
    "return_policy": "You can return the {product} within 30 days of delivery for a full refund "
                     "if it is unused and in its original packaging.",
    "delivery_date": "Order {order} is scheduled to arrive before {date}, so it will be there "
                     "in time.",
    "wrong_item": "Sorry about the mix-up in order {order}. We will send the {product} today; "
                  "please return the {product2} with the prepaid label we emailed you.",
}
SUPPORT_INTENTS = tuple(SUPPORT_QUESTIONS)
GREETINGS = ("", "", "", "Hi, ", "Hello, ", "Hi there, ")

# --------------------------------------------------------------------------------------------------
# tales

ANIMALS = ("fox", "hare", "badger", "owl", "mouse", "crow", "tortoise", "squirrel", "hedgehog",
           "otter", "goat", "wren", "frog", "bear", "wolf", "deer", "beaver", "magpie")
ADJECTIVES = ("clever", "shy", "kind", "curious", "brave", "timid", "patient", "gentle",
              "cheerful", "wise", "quiet", "humble")
# The hero's adjective fits the plot; the friend's comes from ADJECTIVES.
HERO_ADJECTIVES = {"lost": ("careless", "forgetful", "hasty", "scatterbrained"),
                   "storm": ("lazy", "carefree", "idle", "careless"),
                   "boast": ("proud", "boastful", "vain", "swift"),
                   "greed": ("greedy", "hungry", "selfish", "sly")}
CHARACTER_NAMES = ("Pip", "Bramble", "Tansy", "Odo", "Fennel", "Rusk", "Nettle", "Moss", "Clover",
                   "Juniper", "Thistle", "Basil", "Hazel", "Pell", "Wick", "Sorrel", "Tamsin",
                   "Burdock", "Linden", "Marlo")
OPENINGS = ("Once upon a time", "Long ago", "In the old days", "Not so long ago")
PLACES = ("at the edge of a dark forest", "beside a slow green river", "on a windy hill",
          "in a meadow full of clover", "near an old stone bridge",
          "in a valley between two mountains", "on the shore of a quiet lake",
          "under the roots of a great oak", "in a village of thatched barns",
          "by a marsh where the reeds grew tall")
ACTIVITIES = ("gathering seeds and nuts", "counting the stars", "singing to the morning",
              "building a snug little house", "collecting shiny pebbles", "watching the clouds",
              "telling stories to anyone who would listen", "running races along the path",
              "tending a small garden of beans", "fishing in the shallows")
FRIEND_TRAITS = ("never said a word more than needed", "always had time for a friend",
                 "knew every path in the land", "laughed at everything",
                 "was old and slow but very wise", "was the best swimmer for miles around")
OBJECTS = ("silver key", "red scarf", "little lantern", "wooden flute", "golden acorn",
           "map of the hills", "blue feather", "copper bell", "basket of berries",
           "smooth white stone")
SEARCH_PLACES = ("under every leaf", "behind every rock", "along the riverbank",
                 "in the tall grass", "inside the hollow log", "all the way to the bridge")
TIMES_OF_DAY = ("morning", "evening", "afternoon", "night")
SEASONS = ("spring", "summer", "autumn", "winter")
WEATHER = ("The wind howled and the rain fell in sheets",
           "Thunder rolled across the sky and the trees bent low",
           "Hail rattled on the roofs and the river rose")
WINTER_WEATHER = WEATHER + ("Snow piled up against every door",
                            "The frost cracked the ice and the wind blew snow through every crack")
CONTESTS = ("who can climb the highest tree", "who can cross the river first",
            "who can find the most mushrooms", "who can stay awake the longest",
            "who can carry the heaviest load")
HOARDED_FOODS = ("berries", "grain", "apples", "nuts", "honey cakes")
# The plots, in the order they are drawn, each with its morals.
MORALS = {
    "lost": ("a friend's patience finds what hurry loses",
             "it is wiser to ask for help than to search alone",
             "the things we value most deserve the most care"),
    "storm": ("it is better to prepare before the storm than to hurry during it",
              "a shared roof keeps out more rain than a proud one",
              "kindness given freely returns when it is needed most"),
    "boast": ("slow and steady often wins the race", "pride goes before a fall",
              "it is better to show your skill than to speak of it"),
    "greed": ("those who take too much may end up with nothing",
              "sharing makes a small meal feel like a feast", "greed weighs more than any basket"),
}
