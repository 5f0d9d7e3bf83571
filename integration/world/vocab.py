"""Text vocabularies of the synthetic world: people, companies, titles, places, content.

Only words live here; the weights that decide how often each is drawn live in
``params.py``. Every list is ASCII so that emails and domains can be built from
it without transliteration.
"""

from __future__ import annotations

FIRST_NAMES = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark",
    "Ashley", "Steven", "Emily", "Paul", "Michelle", "Andrew", "Amanda", "Joshua", "Melissa",
    "Kevin", "Stephanie", "Brian", "Rebecca", "George", "Laura", "Timothy", "Emma", "Jason",
    "Olivia", "Ryan", "Sophia", "Jacob", "Chloe", "Lukas", "Hannah", "Felix", "Lea", "Jonas",
    "Marie", "Louis", "Camille", "Hugo", "Manon", "Lucas", "Ines", "Mateo", "Sofia", "Diego",
    "Valentina", "Santiago", "Camila", "Gabriel", "Isabella", "Rafael", "Ana", "Pedro",
    "Beatriz", "Arjun", "Priya", "Rahul", "Ananya", "Vikram", "Deepa", "Wei", "Mei", "Jun",
    "Yuki", "Haruto", "Sakura", "Kenji", "Aiko", "Min", "Ji", "Erik", "Astrid", "Lars",
    "Ingrid", "Sven", "Freja", "Liam", "Aoife", "Sean", "Niamh", "Oliver", "Amelia", "Noah",
    "Ava", "Ethan", "Mia", "Leo", "Zoe", "Omar", "Layla", "Yusuf", "Amira", "Tom", "Nina",
)

LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Mueller", "Schmidt", "Schneider",
    "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann", "Schulz", "Dubois", "Durand",
    "Leroy", "Moreau", "Laurent", "Simon", "Michel", "Lefebvre", "Bernard", "Rossi", "Russo",
    "Ferrari", "Esposito", "Bianchi", "Romano", "Silva", "Santos", "Oliveira", "Souza", "Costa",
    "Pereira", "Almeida", "Carvalho", "Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy",
    "Iyer", "Mehta", "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Tanaka",
    "Suzuki", "Takahashi", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kim", "Park", "Choi",
    "Jung", "Kang", "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson",
    "Hansen", "Jensen", "Nielsen", "Murphy", "Kelly", "OBrien", "Byrne", "Ryan", "Walsh",
    "Novak", "Kowalski", "Nowak", "Horvat", "Jansen", "deVries", "Bakker", "Visser", "Smit",
    "Ali", "Khan", "Hassan", "Hussein", "Cohen", "Levi", "Friedman", "Evans", "Turner",
    "Parker", "Collins", "Edwards", "Stewart", "Morris", "Murray", "Ward", "Cook", "Bell",
)

# Company names are "<brand> <noun>": brand = prefix + suffix syllables (e.g. "Velora"),
# noun drawn from the account's industry list or the generic list.
BRAND_PREFIXES = (
    "Acme", "Vel", "Nor", "Zen", "Quant", "Astr", "Bright", "Clear", "Cor", "Dyn", "Ever",
    "Flux", "Gal", "Hal", "Ion", "Jun", "Kin", "Lum", "Mer", "Nov", "Omni", "Pax", "Quor",
    "Riv", "Sol", "Tal", "Ult", "Vant", "Wex", "Xen", "Yor", "Zeph", "Alt", "Bel", "Cas",
    "Del", "Elk", "Fen", "Gran", "Hel", "Ir", "Jas", "Kor", "Lyr", "Mon", "Nex", "Orb", "Pin",
    "Red", "Sil", "Ter", "Umb", "Ver", "Wil", "Arc", "Blue", "Cedar", "Deep", "Echo", "Fir",
)
BRAND_SUFFIXES = (
    "", "a", "ora", "ix", "io", "ara", "eon", "ity", "ant", "ly", "ex", "on", "ium", "era",
    "ova", "is", "wood", "stone", "field", "bridge", "point", "wave", "gate", "line", "works",
    "peak", "path", "mark", "core", "leaf", "ridge", "light", "vale", "port", "crest", "mint",
    "hub", "loop", "nest", "tide",
)
INDUSTRY_NOUNS: dict[str, tuple[str, ...]] = {
    "Software": ("Software", "Cloud", "Analytics", "Data", "AI", "Apps", "Digital", "Robotics"),
    "Financial Services": ("Capital", "Finance", "Bank", "Insurance", "Payments", "Advisors",
                           "Wealth", "Credit"),
    "Healthcare": ("Health", "Medical", "Clinics", "Bio", "Care", "Pharma", "Diagnostics",
                   "Therapeutics"),
    "Manufacturing": ("Manufacturing", "Industries", "Machines", "Components", "Metals",
                      "Plastics", "Fabrication", "Motors"),
    "Retail": ("Retail", "Stores", "Goods", "Outfitters", "Market", "Brands", "Foods", "Home"),
    "Education": ("Learning", "Academy", "Education", "Schools", "Institute", "Tutoring",
                  "Campus", "Courses"),
    "Professional Services": ("Consulting", "Partners", "Advisory", "Legal", "Associates",
                              "Staffing", "Agency", "Strategy"),
}
GENERIC_NOUNS = ("Group", "Labs", "Systems", "Solutions", "Global", "Holdings", "Co", "Works")

# Unlikely to exist on the internet; the seller whose CRM this is.
SELLER_DOMAIN = "northwind-demo.example"

FREE_MAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com",
                     "proton.me", "gmx.de")
FREE_MAIL_WEIGHTS = (0.55, 0.1, 0.13, 0.1, 0.06, 0.03, 0.03)
# Company as typed by someone who signed up with a personal address.
FREELANCE_COMPANIES = ("Self-employed", "Freelance", "Independent Consultant")

# ISO-3166 alpha-2 countries per region, their weights inside the region, dialling codes.
COUNTRIES: dict[str, tuple[tuple[str, float, str], ...]] = {
    "NA": (("US", 0.85, "1"), ("CA", 0.15, "1")),
    "EMEA": (("GB", 0.3, "44"), ("DE", 0.22, "49"), ("FR", 0.15, "33"), ("NL", 0.1, "31"),
             ("SE", 0.08, "46"), ("ES", 0.08, "34"), ("IE", 0.07, "353")),
    "APAC": (("AU", 0.35, "61"), ("JP", 0.2, "81"), ("SG", 0.2, "65"), ("IN", 0.25, "91")),
    "LATAM": (("BR", 0.45, "55"), ("MX", 0.3, "52"), ("AR", 0.13, "54"), ("CL", 0.12, "56")),
}

SENIORITIES = ("c_level", "vp", "director", "manager", "individual")
DEPARTMENTS = ("sales", "marketing", "engineering", "finance", "operations", "it")

# Title variants per (seniority, department); one is drawn uniformly per lead.
TITLES: dict[tuple[str, str], tuple[str, ...]] = {
    ("c_level", "sales"): ("Chief Revenue Officer", "CRO", "Chief Sales Officer"),
    ("c_level", "marketing"): ("CMO", "Chief Marketing Officer"),
    ("c_level", "engineering"): ("CTO", "Chief Technology Officer"),
    ("c_level", "finance"): ("CFO", "Chief Financial Officer"),
    ("c_level", "operations"): ("COO", "Chief Operating Officer", "CEO"),
    ("c_level", "it"): ("CIO", "Chief Information Officer"),
    ("vp", "sales"): ("VP of Sales", "VP Sales", "Vice President, Sales"),
    ("vp", "marketing"): ("VP of Marketing", "VP Marketing", "VP Demand Generation"),
    ("vp", "engineering"): ("VP of Engineering", "VP Engineering", "Vice President, Engineering"),
    ("vp", "finance"): ("VP of Finance", "VP Finance"),
    ("vp", "operations"): ("VP of Operations", "VP Operations", "VP Revenue Operations"),
    ("vp", "it"): ("VP of IT", "VP Information Technology"),
    ("director", "sales"): ("Director of Sales", "Sales Director", "Regional Sales Director"),
    ("director", "marketing"): ("Director of Marketing", "Marketing Director"),
    ("director", "engineering"): ("Director of Engineering", "Engineering Director"),
    ("director", "finance"): ("Director of Finance", "Finance Director", "Controller"),
    ("director", "operations"): ("Director of Operations", "Operations Director"),
    ("director", "it"): ("IT Director", "Director of IT"),
    ("manager", "sales"): ("Sales Manager", "Account Manager", "Sales Operations Manager"),
    ("manager", "marketing"): ("Marketing Manager", "Demand Generation Manager"),
    ("manager", "engineering"): ("Engineering Manager", "Software Development Manager"),
    ("manager", "finance"): ("Finance Manager", "Accounting Manager"),
    ("manager", "operations"): ("Operations Manager", "Revenue Operations Manager"),
    ("manager", "it"): ("IT Manager", "Infrastructure Manager"),
    ("individual", "sales"): ("Account Executive", "Sales Representative", "SDR"),
    ("individual", "marketing"): ("Marketing Specialist", "Content Marketer", "Marketing Analyst"),
    ("individual", "engineering"): ("Software Engineer", "Senior Software Engineer",
                                    "Data Engineer"),
    ("individual", "finance"): ("Financial Analyst", "Accountant"),
    ("individual", "operations"): ("Operations Analyst", "Operations Specialist"),
    ("individual", "it"): ("Systems Administrator", "IT Specialist", "Network Engineer"),
}
# Founders of very small companies call themselves this whatever their department.
FOUNDER_TITLES = ("Founder", "Co-Founder", "Founder & CEO", "Owner")

USER_FIRST_NAMES = ("Alex", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery",
                    "Quinn", "Drew", "Cameron", "Reese", "Skyler", "Parker", "Rowan", "Hayden")

QUEUES = (
    ("Senior AE – Now", "Senior_AE_Now"),
    ("AE Queue", "AE_Queue"),
    ("SDR Queue", "SDR_Queue"),
    ("Nurture", "Nurture"),
    ("Newsletter", "Newsletter"),
)

# Engagement details per kind (what marketing automation records as the asset or page).
ENGAGEMENT_DETAILS: dict[str, tuple[str, ...]] = {
    "page_view": ("/", "/product", "/product/integrations", "/customers", "/blog/lead-scoring",
                  "/blog/uplift-vs-propensity", "/security", "/docs/getting-started", "/about"),
    "pricing_page_visit": ("/pricing", "/pricing#enterprise", "/pricing/compare"),
    "form_fill": ("Demo request", "Contact sales", "Free trial signup", "Newsletter signup"),
    "webinar_attended": ("Webinar: Forecasting pipeline with AI",
                         "Webinar: Pipeline hygiene 101",
                         "Webinar: Who to call first"),
    "content_download": ("Whitepaper: The State of B2B Sales 2026",
                         "Ebook: The Lead Scoring Playbook",
                         "Report: Outbound Benchmarks"),
    "email_click": ("Newsletter: Monthly digest", "Product update", "Event invitation",
                    "Sales email link"),
}
# The detail recorded for the event a lead's source implies at creation time.
SOURCE_EVENT_DETAIL = {
    "Web Form": ("form_fill", "Demo request"),
    "Webinar": ("webinar_attended", "Webinar: Forecasting pipeline with AI"),
    "Content Download": ("content_download", "Ebook: The Lead Scoring Playbook"),
}

OPPORTUNITY_PRODUCTS = ("Team Plan", "Business Plan", "Enterprise Platform")
