# ruff: noqa: E501  (the text of the set: long lines read better than split sentences)
"""The text of the public evaluation set: four long PDF documents of the kind organisations keep
(two near-duplicate plan guides that differ in their figures, an employee handbook, a product
manual), and the questions people ask about them.

Everything here is fictional and written for this set. `eval/build.py` lays it out as PDFs (one
section over several pages, tables of figures, repeated boilerplate, as real booklets have) and
writes the questions with page-level truths.
"""

# Each section: title, intro, table rows (label, value), details, notes. A value may be a dict
# {"essential": ..., "premier": ...} in the plan guides: the two tiers share every word but those.
# Questions: (text, where) where `where` is "table", "details" or "notes" (the page it is on), or
# a tuple of two of them for an answer spanning pages; {fact} placeholders are filled per tier.

PLAN_SECTIONS = [
    {
        "title": "Hearing care",
        "intro": "Hearing care covers tests of your hearing by a licensed audiologist, hearing aids "
        "and their fitting, and repairs. Good hearing matters for safety at work and at home, so "
        "the plan pays for a full assessment before any device is chosen.",
        "table": [
            (
                "Hearing test (audiogram)",
                {"essential": "EUR 25 co-payment", "premier": "no co-payment"},
            ),
            (
                "Hearing aids, per ear",
                {
                    "essential": "up to EUR 600 every 5 years",
                    "premier": "up to EUR 1,800 every 3 years",
                },
            ),
            (
                "Repairs and batteries",
                {"essential": "not covered", "premier": "up to EUR 120 a year"},
            ),
        ],
        "details": "To receive hearing aids you need a referral from an ear, nose and throat "
        "specialist and a quote from the audiologist. Send both to Harbor Health before you buy; "
        "we answer within 10 working days. Devices bought without approval are reimbursed at half "
        "the usual amount.",
        "notes": "Hearing aids lost or stolen are replaced only once in each benefit period. "
        "Cochlear implants are part of hospital care, not of this benefit.",
        "questions": [
            ("how much does {plan} pay for hearing aids", "table"),
            ("hearing care servcies on the {plan} plan - are batteries covered?", "table"),
            ("do I need a referral before buying a hearing aid", "details"),
            ("hearing aid got stolen, will they replace it", "notes"),
        ],
    },
    {
        "title": "Dental care",
        "intro": "Dental care includes check-ups, cleaning by a dental hygienist, fillings, root "
        "canal treatment and, on some tiers, crowns and orthodontics. Preventive care is the "
        "cheapest care, so check-ups are covered from the first day of membership.",
        "table": [
            (
                "Check-up and cleaning",
                {"essential": "1 visit a year", "premier": "2 visits a year"},
            ),
            (
                "Fillings and root canals",
                {"essential": "70% of the fee", "premier": "90% of the fee"},
            ),
            (
                "Crowns and bridges",
                {"essential": "not covered", "premier": "60% up to EUR 1,500 a year"},
            ),
            (
                "Orthodontics (under 18)",
                {"essential": "not covered", "premier": "up to EUR 2,500 in total"},
            ),
        ],
        "details": "Treatment plans above EUR 800 must be approved in advance. Ask your dentist to "
        "send the plan with X-rays through the provider portal. Cosmetic treatment such as "
        "whitening or veneers is never covered.",
        "notes": "There is a waiting period of six months for crowns, bridges and orthodontics "
        "after you join. Emergency dental treatment abroad is covered by travel cover instead.",
        "questions": [
            ("how many dental cleanings a year on {plan}", "table"),
            ("is braces for my kid covered under the {plan} plan", "table"),
            ("teeth whitening covered?", "details"),
            ("waiting period crowns", "notes"),
        ],
    },
    {
        "title": "Vision care",
        "intro": "Vision care pays for eye examinations by an optometrist and for glasses or "
        "contact lenses. Laser eye surgery is not part of vision care.",
        "table": [
            ("Eye examination", {"essential": "once every 2 years", "premier": "once a year"}),
            (
                "Glasses or contact lenses",
                {"essential": "EUR 150 every 2 years", "premier": "EUR 400 every year"},
            ),
        ],
        "details": "You may choose any optician. Keep the itemised receipt: it must show the "
        "prescription and the price of frames and lenses separately, or the claim is returned.",
        "notes": "Sunglasses are covered only when they carry your prescription. Children under "
        "twelve may replace their glasses once a year on every tier if their prescription changes.",
        "questions": [
            ("how often can i get an eye test on {plan}", "table"),
            ("glasses allowance {plan} plan", "table"),
            ("what has to be on the optician receipt", "details"),
            ("prescription sunglases", "notes"),
        ],
    },
    {
        "title": "Physiotherapy",
        "intro": "Physiotherapy helps you recover movement after an injury, an operation or a long "
        "illness. Sessions with a registered physiotherapist, osteopath or chiropractor count "
        "towards the same yearly number of sessions.",
        "table": [
            ("Sessions a year", {"essential": "9 sessions", "premier": "20 sessions"}),
            ("Co-payment per session", {"essential": "EUR 15", "premier": "EUR 5"}),
        ],
        "details": "The first six sessions need no referral. Further sessions need a referral from "
        "your family doctor that states the diagnosis. Home visits are covered when you cannot "
        "leave the house.",
        "notes": "Sports massage, pilates classes and gym memberships are not physiotherapy and "
        "are not covered.",
        "questions": [
            ("How many physio sessions do I get with {plan}?", "table"),
            ("cost per physiotherapy visit {plan}", "table"),
            ("can the physio come to my house", "details"),
            ("is pilates covered", "notes"),
        ],
    },
    {
        "title": "Mental health",
        "intro": "Mental health care covers talking therapy with a licensed psychologist or "
        "psychotherapist, psychiatric consultations and the Harbor Listen helpline, which is open "
        "day and night.",
        "table": [
            ("Therapy sessions a year", {"essential": "8 sessions", "premier": "25 sessions"}),
            (
                "Harbor Listen helpline",
                {"essential": "free, 24 hours", "premier": "free, 24 hours"},
            ),
            (
                "Online therapy",
                {"essential": "not covered", "premier": "covered like in-person sessions"},
            ),
        ],
        "details": "You do not need a referral for therapy. Choose a therapist from the provider "
        "directory and we pay them directly. Therapists outside the directory are reimbursed at "
        "75 percent of our tariff.",
        "notes": "Couples therapy is covered only on the Premier tier and counts towards the same "
        "number of sessions. Coaching and mindfulness courses are not covered.",
        "questions": [
            ("number of therapy sessions per year in the {plan} plan", "table"),
            ("is there someone i can call at night if I'm not ok", "table"),
            ("therapist not in the directory, what do I get back", "details"),
            ("couples counselling", "notes"),
        ],
    },
    {
        "title": "Hospital care",
        "intro": "Hospital care covers planned and emergency stays in hospital, operations, "
        "intensive care and the specialists who treat you there.",
        "table": [
            ("Room", {"essential": "shared room", "premier": "private room"}),
            (
                "Daily co-payment",
                {"essential": "EUR 20 a day, at most 14 days a year", "premier": "none"},
            ),
            ("Companion of a child under 12", {"essential": "covered", "premier": "covered"}),
        ],
        "details": "Planned stays must be announced to Harbor Health at least five working days "
        "before admission. For an emergency, the hospital or a relative must tell us within 48 "
        "hours. We then pay the hospital directly.",
        "notes": "Rehabilitation after a stay is covered for up to 21 days when a hospital doctor "
        "prescribes it. Cosmetic surgery is not covered.",
        "questions": [
            ("do i get a private room in hospital on {plan}", "table"),
            ("how much do I pay per day in hospital with the {plan} plan", "table"),
            ("emergency admission who do I tell and by when", "details"),
            ("rehab after surgery how long", "notes"),
        ],
    },
    {
        "title": "Prescription medicines",
        "intro": "Prescription medicines are paid when a doctor prescribes them and they appear on "
        "the Harbor Health medicine list, which follows the national list of reimbursed drugs.",
        "table": [
            (
                "Generic medicines",
                {"essential": "EUR 5 per prescription", "premier": "EUR 2 per prescription"},
            ),
            (
                "Brand-name medicines",
                {"essential": "EUR 15 per prescription", "premier": "EUR 7 per prescription"},
            ),
            ("Yearly cap on co-payments", {"essential": "EUR 350", "premier": "EUR 150"}),
        ],
        "details": "Show your member card at the pharmacy and it charges only the co-payment. If "
        "you paid in full, claim within 90 days with the receipt and the prescription.",
        "notes": "Medicines not on the list may be covered after an individual request from your "
        "doctor explaining why no listed medicine works for you.",
        "questions": [
            ("{plan}: how much is a generic prescription", "table"),
            ("max I pay for medicine in a year on the {plan} plan", "table"),
            ("paid full price at the pharmacy, how long do I have to claim", "details"),
            ("my medication isnt on the list", "notes"),
        ],
    },
    {
        "title": "Maternity care",
        "intro": "Maternity care covers antenatal check-ups, scans, birth in hospital or at home "
        "with a midwife, and postnatal care for mother and baby.",
        "table": [
            ("Antenatal classes", {"essential": "up to EUR 100", "premier": "up to EUR 300"}),
            ("Maternity home care after birth", {"essential": "5 days", "premier": "8 days"}),
            ("Birth allowance", {"essential": "none", "premier": "EUR 500 per child"}),
        ],
        "details": "Register your pregnancy with Harbor Health before the 20th week so that home "
        "care after the birth can be arranged. Register the newborn within 30 days and the baby "
        "is covered from birth.",
        "notes": "Fertility treatment is covered up to three cycles when a specialist prescribes "
        "it; the waiting period of twelve months applies to it.",
        "questions": [
            ("how many days of home care after giving birth with {plan}", "table"),
            ("do we get money when the baby is born on the {plan} plan", "table"),
            ("deadline to add my newborn to the insurance", "details"),
            ("ivf how many tries", "notes"),
        ],
    },
    {
        "title": "Travel cover",
        "intro": "Travel cover pays for urgent medical care while you are abroad on a trip of up to "
        "90 days, including transport home when a doctor says it is needed.",
        "table": [
            ("Urgent care abroad", {"essential": "up to the Dutch tariff", "premier": "full cost"}),
            ("Repatriation", {"essential": "not covered", "premier": "covered"}),
        ],
        "details": "Call the Harbor Assist line on +31 20 555 0190 before you go to a hospital "
        "abroad when you can. Keep all bills; claims in other currencies are converted at the rate "
        "of the day of treatment.",
        "notes": "Trips taken to receive treatment abroad are not travel cover; they need prior "
        "approval under the benefit concerned.",
        "questions": [
            ("am I covered for being flown home if i get sick abroad ({plan})", "table"),
            ("phone number for help abroad", "details"),
            ("harbor assist number and what is covered abroad on {plan}", ("details", "table")),
        ],
    },
    {
        "title": "Claims and payments",
        "intro": "Most providers bill Harbor Health directly. When you have paid a bill yourself, "
        "send it to us and we reimburse you.",
        "table": [
            (
                "Claim deadline",
                {
                    "essential": "within 6 months of treatment",
                    "premier": "within 12 months of treatment",
                },
            ),
            (
                "Payment time",
                {"essential": "within 20 working days", "premier": "within 10 working days"},
            ),
        ],
        "details": "Submit claims in the Harbor Health app by photographing the bill, or by post "
        "to Harbor Health Claims, PO Box 4410, 3000 AK Rotterdam. Never send original receipts "
        "that you need to keep.",
        "notes": "If you disagree with a decision, ask for a review within six weeks. If the "
        "review does not settle it, you may turn to the independent health insurance ombudsman.",
        "questions": [
            ("How long do I have to send in a bill on {plan}?", "table"),
            ("how fast do they pay back ({plan})", "table"),
            ("postal address for claims", "details"),
            ("disagree with a claim decision", "notes"),
        ],
    },
    {
        "title": "Premiums and deductible",
        "intro": "Your premium is the monthly price of the plan. The deductible is the part of the "
        "yearly costs you pay yourself before the plan pays for hospital care and medicines.",
        "table": [
            ("Monthly premium (adult)", {"essential": "EUR 118", "premier": "EUR 196"}),
            ("Yearly deductible", {"essential": "EUR 385", "premier": "EUR 385"}),
            ("Children under 18", {"essential": "free", "premier": "free"}),
        ],
        "details": "Premiums are collected on the first working day of the month. A voluntary "
        "higher deductible lowers the premium by EUR 4 for every EUR 100 you add, up to EUR 500 "
        "extra.",
        "notes": "If you miss two payments we send a reminder; after four months without payment "
        "the cover is suspended until the arrears are paid.",
        "questions": [
            ("what does {plan} cost per month", "table"),
            ("deductable amount", "table"),
            ("how much cheaper if i take a higher deductible", "details"),
            ("what happens if I stop paying", "notes"),
        ],
    },
    {
        "title": "Changing or ending your plan",
        "intro": "You may change tier or leave Harbor Health once a year, and in some situations "
        "during the year.",
        "table": [
            (
                "Switch tier",
                {
                    "essential": "on 1 January, request by 31 December",
                    "premier": "on 1 January, request by 31 December",
                },
            ),
            ("Notice to leave", {"essential": "one month", "premier": "one month"}),
        ],
        "details": "When you move abroad, start a job with a group contract, or when we raise the "
        "premium during the year, you may end the plan at once with a letter or through the app.",
        "notes": "Benefits with a waiting period start again from zero when you return to Harbor "
        "Health after leaving.",
        "questions": [
            ("when can I upgrade from essential to premier", "table"),
            ("moving abroad can I cancel right away", "details"),
        ],
    },
]

HANDBOOK_SECTIONS = [
    {
        "title": "Working hours and flexible time",
        "intro": "Quillstone works with flexible hours around a core period, so that teams can "
        "meet while everyone plans the rest of the day themselves.",
        "table": [
            ("Standard week", "38 hours"),
            ("Core hours", "10:00 to 15:00, Monday to Thursday"),
            ("Friday core hours", "10:00 to 13:00"),
        ],
        "details": "Record your hours in Timebook by the Monday after each week. Overtime must be "
        "agreed with your lead in advance and is compensated with time off at 1.25 hours per "
        "hour worked.",
        "notes": "Working before 7:00 or after 21:00 needs the approval of your department head, "
        "and at least eleven hours must lie between two working days.",
        "questions": [
            ("what are core hrs on friday", "table"),
            ("how is overtime paid back", "details"),
            ("can I start work at 6 am", "notes"),
        ],
    },
    {
        "title": "Annual leave",
        "intro": "Every employee has paid annual leave to rest and recover. Plan it early with "
        "your team so that cover is arranged.",
        "table": [
            ("Full-time entitlement", "28 days a year"),
            ("Extra days from age 50", "2 days"),
            ("Carry-over", "up to 5 days, to be taken by 31 March"),
        ],
        "details": "Request leave in Timebook at least four weeks ahead for absences longer than "
        "one week. Your lead answers within five working days; no answer means the request is "
        "approved.",
        "notes": "During the annual stock-take in the first week of October, warehouse staff may "
        "not take leave.",
        "questions": [
            ("how many vacation days do i get", "table"),
            ("unused holidays next year?", "table"),
            ("how far ahead do I ask for two weeks off", "details"),
            ("blackout period warehouse", "notes"),
        ],
    },
    {
        "title": "Sick leave",
        "intro": "If you are ill, stay at home and get well. Tell us early so that your work can be "
        "covered.",
        "table": [
            ("Report sickness", "before 9:00 on the first day"),
            ("Medical certificate", "from the 4th day"),
            ("Pay during sickness", "100% for 6 weeks, then 70%"),
        ],
        "details": "Call your lead, do not only send a message. After two weeks of absence the "
        "company doctor contacts you to plan your return.",
        "notes": "A child's illness gives up to five days of paid care leave a year for each parent.",
        "questions": [
            ("when do i need a doctors note", "table"),
            ("do I still get paid when sick for 2 months", "table"),
            ("kid is sick can I stay home", "notes"),
        ],
    },
    {
        "title": "Remote work",
        "intro": "Most roles at Quillstone can be done partly from home. Remote work is agreed "
        "between you and your lead.",
        "table": [
            ("Home office days", "up to 3 days a week"),
            ("Equipment budget", "EUR 450 once"),
            ("Internet allowance", "EUR 25 a month"),
        ],
        "details": "Working from another country is allowed for up to 20 working days a year and "
        "must be registered with HR two weeks ahead, because of tax and social security rules.",
        "notes": "Company laptops must use the VPN on any network that is not the office network.",
        "questions": [
            ("how many days wfh", "table"),
            ("money for a desk chair for home", "table"),
            ("can I work from spain for a month", "details"),
        ],
    },
    {
        "title": "Travel and expenses",
        "intro": "Business travel should be safe and sensible. Book through the travel portal "
        "Voyagr and keep all receipts.",
        "table": [
            ("Per diem, domestic", "EUR 32"),
            ("Per diem, abroad", "EUR 48"),
            ("Hotel limit", "EUR 140 a night"),
            ("Mileage, own car", "EUR 0.30 per km"),
        ],
        "details": "Trains are preferred for trips under 600 km. Flights need the approval of your "
        "department head. Business class is allowed only on flights of more than nine hours.",
        "notes": "Submit expense reports within 30 days of the trip in Voyagr; late reports are "
        "paid only with the approval of Finance.",
        "questions": [
            ("whats the daily allowance abroad", "table"),
            ("max hotel price per night", "table"),
            ("can i fly business class", "details"),
            ("deadline for expenses after a trip", "notes"),
        ],
    },
    {
        "title": "Learning and development",
        "intro": "We invest in your growth: courses, conferences, books and time to learn.",
        "table": [("Learning budget", "EUR 1,200 a year"), ("Learning days", "3 days a year")],
        "details": "Courses above EUR 2,000 need a repayment agreement: if you leave within one "
        "year you repay the full cost, within two years half of it.",
        "notes": "Books and online subscriptions up to EUR 100 can be bought without approval.",
        "questions": [
            ("training budget per year", "table"),
            ("do I have to pay back an expensive course if I quit", "details"),
        ],
    },
    {
        "title": "Parental leave",
        "intro": "Quillstone supports parents in the first months with a child, on top of the "
        "statutory leave.",
        "table": [
            ("Birth leave for the partner", "10 working days, fully paid"),
            ("Extra parental leave", "9 weeks at 70% pay in the first year"),
        ],
        "details": "Tell HR at least two months before the planned start of parental leave. The "
        "leave may be split into blocks of at least one week.",
        "notes": "Adoptive and foster parents have the same rights from the day the child joins the "
        "family.",
        "questions": [
            ("paternity leave how long", "table"),
            ("how early do I tell HR about parental leave", "details"),
            ("adoption leave", "notes"),
        ],
    },
    {
        "title": "Security and passwords",
        "intro": "Everyone protects Quillstone's information and that of our customers.",
        "table": [
            ("Password length", "at least 14 characters"),
            ("Password manager", "Keyward, required"),
            ("Screen lock", "after 5 minutes"),
        ],
        "details": "Report a lost laptop or phone to the IT service desk at once, on extension 4400 "
        "or at any hour through the security hotline +31 30 555 0144.",
        "notes": "Never forward work e-mail to private accounts and never store customer data on USB "
        "sticks.",
        "questions": [
            ("how long does my pasword need to be", "table"),
            ("lost my laptop who do I call", "details"),
            ("can I use a usb stick for customer files", "notes"),
        ],
    },
    {
        "title": "Company car and bicycle",
        "intro": "Some roles come with a company car; everyone can lease a bicycle.",
        "table": [
            ("Bike lease", "up to EUR 3,000, repaid from gross salary over 36 months"),
            ("Company car", "for sales and field service roles"),
            ("Private use of company car", "allowed, 22% tax addition"),
        ],
        "details": "Fuel for private trips abroad is paid by the driver. Report any damage within 24 "
        "hours to the fleet desk.",
        "notes": "Parking fines and speeding tickets are always paid by the driver.",
        "questions": [
            ("e-bike lease max price", "table"),
            ("who pays my speeding ticket in the company car", "notes"),
        ],
    },
    {
        "title": "Pension",
        "intro": "All employees join the Quillstone pension plan from their first day.",
        "table": [
            ("Employer contribution", "8% of salary"),
            ("Employee contribution", "4% of salary"),
            ("Retirement age", "the state pension age"),
        ],
        "details": "You may add voluntary contributions of up to 5 percent of salary; they are taken "
        "from gross pay. Change them once a year in November.",
        "notes": "When you leave, your pension stays with the fund or can be transferred to your new "
        "employer's fund.",
        "questions": [
            ("how much does the company put in my pension", "table"),
            ("extra pension savings when can i change it", "details"),
        ],
    },
    {
        "title": "Code of conduct",
        "intro": "We treat each other, customers and partners with respect and act honestly.",
        "table": [
            ("Gifts from suppliers", "up to EUR 50, declared"),
            ("Confidential adviser", "Maren Olsson, ext. 2210"),
        ],
        "details": "Conflicts of interest, such as a side job with a supplier, must be reported to "
        "your lead and to Compliance before you accept it.",
        "notes": "Reports of misconduct can be made anonymously through the SpeakUp line; no one "
        "who reports in good faith is disadvantaged.",
        "questions": [
            ("can i keep a gift from a vendor", "table"),
            ("who is the confidential advisor", "table"),
            ("report something anonymously", "notes"),
        ],
    },
    {
        "title": "Leaving Quillstone",
        "intro": "When you leave, we want the handover to be smooth and the goodbye to be good.",
        "table": [
            ("Notice period, employee", "1 month"),
            ("Notice period, employer", "2 to 4 months by length of service"),
        ],
        "details": "Return your laptop, phone, badge and any company card on your last working day. "
        "Unused leave is paid out with the final salary.",
        "notes": "An exit interview with HR is offered to everyone; it is voluntary.",
        "questions": [
            ("notice period if i resign", "table"),
            ("what happens to my leftover vacation days when I leave", "details"),
        ],
    },
    {
        "title": "Health and safety",
        "intro": "Safe work is everyone's job. Know the emergency routes of your building.",
        "table": [
            ("Emergency number", "112, then reception on ext. 1000"),
            ("First aiders", "one per 50 staff per floor"),
            ("Eye test for screen work", "reimbursed every 2 years"),
        ],
        "details": "Report every accident and near miss in the SafeNet form within 24 hours, even "
        "when nobody was hurt.",
        "notes": "Screen glasses are paid up to EUR 200 when the optician confirms that they are "
        "needed for screen work.",
        "questions": [
            ("report an accident at work", "details"),
            ("glasses for computer work paid?", "notes"),
        ],
    },
]

MANUAL_SECTIONS = [
    {
        "title": "What is in the box",
        "intro": "The Tern T4 Smart Thermostat controls your heating and cooling and learns your "
        "schedule.",
        "table": [
            ("Thermostat unit", "1"),
            ("Wall plate and screws", "1 set"),
            ("Power adapter", "12 V, 1 A"),
            ("Display", "3.5 inch colour touch screen"),
        ],
        "details": "Keep the box until installation is complete; a missing part is replaced free "
        "within 30 days of purchase.",
        "notes": "The T4 works with most 24 V boilers and heat pumps. It does not work with "
        "line-voltage (230 V) electric heaters.",
        "questions": [
            ("what size is the screen on the t4", "table"),
            ("does it work with my electric baseboard heater", "notes"),
        ],
    },
    {
        "title": "Installation",
        "intro": "Installation takes about 30 minutes. Turn off the power to the heating system "
        "first.",
        "table": [
            ("Mounting height", "1.5 m above the floor"),
            ("Distance from windows", "at least 1 m"),
            ("Wires supported", "R, C, W1, W2, Y1, G, OT+/OT-"),
        ],
        "details": "If your old thermostat has no C wire, use the supplied power adapter. Label the "
        "wires with the stickers in the box before you take the old thermostat off.",
        "notes": "Installation on an outside wall or in direct sunlight makes the readings too low "
        "or too high.",
        "questions": [
            ("how high should I mount the thermostat", "table"),
            ("no c wire what do i do", "details"),
        ],
    },
    {
        "title": "Connecting to Wi-Fi",
        "intro": "The T4 connects to your home network to receive updates and to be controlled "
        "from the Tern Home app.",
        "table": [
            ("Wi-Fi bands", "2.4 GHz only"),
            ("Security", "WPA2 or WPA3"),
            ("Setup code", "shown on the back of the unit"),
        ],
        "details": "Open the Tern Home app, tap Add device and scan the setup code. If the app "
        "cannot find the thermostat, hold the dial for 10 seconds to restart pairing.",
        "notes": "Networks with a captive portal, as in hotels, are not supported.",
        "questions": [
            ("does the thermostat support 5ghz wifi", "table"),
            ("app cant find the thermostat", "details"),
        ],
    },
    {
        "title": "Schedules",
        "intro": "A schedule sets the temperature for each part of the day.",
        "table": [
            ("Time slots per day", "up to 6"),
            ("Default comfort temperature", "20.5 C"),
            ("Default night temperature", "16 C"),
        ],
        "details": "Copy a day's schedule to other days by holding its tile and choosing Copy to. "
        "Changes from the dial last until the next time slot begins.",
        "notes": "Learning mode adjusts the schedule after two weeks of use; turn it off in Settings, "
        "Schedule, Learning.",
        "questions": [
            ("how many temperature changes a day can i set", "table"),
            ("stop it from learning my schedule", "notes"),
        ],
    },
    {
        "title": "Eco mode and away",
        "intro": "Eco mode lowers energy use while nobody is at home.",
        "table": [("Away temperature", "15 C by default"), ("Frost protection", "7 C, always on")],
        "details": "Geofencing switches to away when every phone linked to the home has left a "
        "radius of 500 m, and back when the first one returns.",
        "notes": "Holiday mode keeps the away temperature until a date you choose.",
        "questions": [
            ("what temp does it keep when im away", "table"),
            ("how does it know i left the house", "details"),
        ],
    },
    {
        "title": "Error codes",
        "intro": "The display shows an error code when something needs your attention.",
        "table": [
            ("E1", "no power on the C wire"),
            ("E2", "boiler does not respond"),
            ("E3", "temperature sensor fault"),
            ("E4", "Wi-Fi password wrong"),
        ],
        "details": "For E2, check that the boiler has water pressure between 1 and 2 bar and reset "
        "it. If the code remains, call your heating engineer.",
        "notes": "E3 cannot be fixed at home; contact Tern support for a replacement.",
        "questions": [
            ("display says E2", "table"),
            ("E2 still there after checking the boiler", "details"),
            ("what does error e3 mean and what do I do", ("table", "notes")),
        ],
    },
    {
        "title": "Firmware updates",
        "intro": "Updates bring new functions and security fixes.",
        "table": [("Update check", "every night at 3:00"), ("Update time", "about 4 minutes")],
        "details": "Heating keeps running on the current schedule during an update. Automatic "
        "updates can be postponed for 30 days in the app, not turned off.",
        "notes": "Security support for the T4 is promised until at least December 2031.",
        "questions": [
            ("can i turn off automatic updates", "details"),
            ("how long will it get security updates", "notes"),
        ],
    },
    {
        "title": "Cleaning and care",
        "intro": "The T4 needs little care.",
        "table": [("Cleaning", "dry, soft cloth"), ("Operating temperature", "0 to 40 C")],
        "details": "Never spray cleaning liquid on the screen. Remove the unit from its wall plate "
        "before painting the wall.",
        "notes": "Dispose of the unit as electronic waste, not with household rubbish.",
        "questions": [("how to clean the screen", "details")],
    },
    {
        "title": "Warranty",
        "intro": "Tern guarantees the T4 against defects in materials and workmanship.",
        "table": [
            ("Warranty period", "2 years from purchase"),
            ("Extended warranty", "3 years when registered within 60 days"),
        ],
        "details": "The warranty does not cover damage from wrong installation, lightning or "
        "water. Keep your receipt as proof of purchase.",
        "notes": "For a claim, contact support with the serial number from Settings, About.",
        "questions": [
            ("how long is the warranty", "table"),
            ("where do I find the serial number", "notes"),
            (
                "warranty: how do I get 3 years and is lightning damage covered",
                ("table", "details"),
            ),
        ],
    },
    {
        "title": "Technical specifications",
        "intro": "Specifications of the Tern T4 Smart Thermostat.",
        "table": [
            ("Dimensions", "96 x 96 x 22 mm"),
            ("Weight", "180 g"),
            ("Temperature accuracy", "plus or minus 0.2 C"),
            ("Standby power", "0.6 W"),
        ],
        "details": "The T4 supports OpenTherm 4.0 for modulating boilers and on/off control for "
        "other systems.",
        "notes": "Radio: Wi-Fi 802.11 b/g/n and Bluetooth Low Energy 5.0 for setup only.",
        "questions": [("how much does the t4 weigh", "table"), ("does it do opentherm", "details")],
    },
]

UNANSWERABLE = [
    "does the plan cover acupuncture for pets",
    "what is the company's stock price",
    "how do I connect the thermostat to my solar panels",
    "who won the football match last night",
    "what is the premium for the gold tier",
    "is there a gym in the quillstone office",
    "can the t4 control my garage door",
    "recipe for banana bread",
    "what's the parking fee at the hospital",
    "how many employees does quillstone have in japan",
]

VAGUE = [
    (
        "what does the essential plan cover for hearing",
        "harbor-health-essential-plan.pdf",
        "Hearing care",
        "table",
    ),
    ("tell me about the thermostat warranty", "tern-t4-thermostat-manual.pdf", "Warranty", "table"),
    ("sick leave rules", "quillstone-employee-handbook.pdf", "Sick leave", "table"),
    ("premier plan dental", "harbor-health-premier-plan.pdf", "Dental care", "table"),
]
