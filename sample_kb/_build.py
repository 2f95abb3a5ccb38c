#!/usr/bin/env python3
"""Regenerate the binary documents (.pdf, .docx) of the sample knowledge base.

The text of every PDF and DOCX lives in this file (PDF_DOCS and DOCX_DOCS below); the Markdown,
HTML and text documents are edited directly in their folders. Run from anywhere:

    .venv/bin/python sample_kb/_build.py            # rebuild all .pdf and .docx files
    .venv/bin/python sample_kb/_build.py --check    # rebuild, then verify QUESTIONS.json

Output is deterministic (fixed dates, normalised zip entries), so rebuilding without changing
the text produces byte-identical files and no git diff.

PDF rules: core font Helvetica only, plain ASCII text, one explicit page per entry in "pages"
(the build fails if a page overflows, so facts stay on the page QUESTIONS.json names).
Requires fpdf2 and python-docx; --check also needs pypdf.
"""

import datetime as dt
import io
import json
import re
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

from docx import Document
from fpdf import FPDF

ROOT = Path(__file__).resolve().parent
AUTHOR = "Northwind Lattice GmbH"
FIXED_DATE = dt.datetime(2025, 3, 1, 9, 0, 0, tzinfo=dt.UTC)

# Blocks: ("h2", text) | ("p", text) | ("ul", [items]) | ("ol", [items])

PDF_DOCS = [
    {
        "path": "handbook/travel-and-expenses.pdf",
        "title": "Travel and Expense Policy",
        "subtitle": "Northwind Lattice GmbH - Finance - valid from 1 January 2025",
        "subject": "Business travel booking, accommodation, per diems and expense claims",
        "pages": [
            [
                (
                    "p",
                    "This policy applies to all business trips of employees of Northwind Lattice GmbH, "
                    "including trips to customers, conferences, trainings and visits to our other "
                    "offices. Its goal is simple: travel safely and comfortably, but spend the "
                    "company's money as carefully as your own. Questions are answered by the travel "
                    "coordinator, Paul Neumann, at extension 2610.",
                ),
                ("h2", "1. Trip approval"),
                (
                    "p",
                    "Every business trip must be approved by your manager before anything is booked. "
                    "Create a trip request in the expense tool Spendwise with the purpose, dates, "
                    "destination and estimated costs. Trips outside Europe additionally need the "
                    "approval of your department head. Bookings made without an approved trip "
                    "request are not reimbursed.",
                ),
                ("h2", "2. Booking through TravelDesk"),
                (
                    "p",
                    "Trains, flights, hotels and rental cars are booked through our travel agency "
                    "Kranich Reisen (TravelDesk). You can book yourself in the TravelDesk online tool, "
                    "which shows only offers within this policy, or ask the agency by email at "
                    "travel@kranich-reisen.example or by phone at +49 341 555 0199. The agency's "
                    "emergency line for problems during a trip is available 24/7 at the same number. "
                    "Invoices from TravelDesk are paid centrally, so you do not need to submit them "
                    "as expenses.",
                ),
                ("h2", "3. Train travel"),
                (
                    "p",
                    "Train is the preferred means of transport within Germany and for trips to "
                    "neighbouring countries. Book second class for journeys of up to 4 hours; for "
                    "journeys of more than 4 hours one way you may book first class. Seat "
                    "reservations are always reimbursed.",
                ),
                (
                    "p",
                    "Employees who make more than 6 business trips by train per year receive a "
                    "BahnCard 50 (second class), paid by the company. Request it through TravelDesk "
                    "with your manager's approval. A BahnCard may also be used for private trips.",
                ),
                ("h2", "4. Flights"),
                (
                    "p",
                    "Flights are permitted only if the train journey would take more than 6 hours one "
                    "way. Book economy class at least 14 days before departure whenever possible. "
                    "Business class is allowed only for flights with a scheduled flight time of more "
                    "than 9 hours and requires the approval of the responsible VP. Seat "
                    "reservations and one checked bag are reimbursed; lounge access and upgrades "
                    "are not.",
                ),
                ("h2", "5. Local transport and taxis"),
                (
                    "p",
                    "At your destination, use public transport where reasonable. Taxis and ride "
                    "services are reimbursed between 20:00 and 06:00, when you carry heavy luggage "
                    "or equipment, or when public transport would take more than twice as long.",
                ),
            ],
            [
                ("h2", "6. Accommodation"),
                (
                    "p",
                    "Hotels are booked through TravelDesk. The following maximum rates per night, "
                    "including breakfast and taxes, apply:",
                ),
                (
                    "ul",
                    [
                        "Germany: EUR 140 per night",
                        "London, Paris, Zurich, Amsterdam, Stockholm and Copenhagen: EUR 180 per night",
                        "All other cities in Europe: EUR 120 per night",
                        "Cities outside Europe: according to the TravelDesk rate list for the country",
                    ],
                ),
                (
                    "p",
                    "During trade fairs, higher rates can be approved by your manager in the trip "
                    "request. Private holiday rentals (for example Airbnb) are not permitted, "
                    "because we cannot guarantee safety and invoicing standards there. If you stay "
                    "with friends or family instead of a hotel, you receive a flat EUR 20 per night.",
                ),
                ("h2", "7. Meal allowances (per diems)"),
                (
                    "p",
                    "For business trips within Germany, Northwind Lattice pays the tax-free meal "
                    "allowances according to German tax law:",
                ),
                (
                    "ul",
                    [
                        "EUR 14 for a day with more than 8 hours of absence from home and office",
                        "EUR 28 for each full day of 24 hours away",
                        "EUR 14 for the day of arrival and the day of departure of a trip with an overnight stay",
                    ],
                ),
                (
                    "p",
                    "If meals are provided, the allowance is reduced: by EUR 5.60 for a breakfast and "
                    "by EUR 11.20 for a lunch or dinner. Breakfast included in the hotel rate "
                    "therefore always reduces the allowance. Meal allowances for trips abroad follow "
                    "the country table published by the German Federal Ministry of Finance; "
                    "Spendwise calculates them automatically from your trip data.",
                ),
                (
                    "p",
                    "With the meal allowance, all of your own meals are covered; restaurant receipts "
                    "for your own meals are not reimbursed in addition.",
                ),
                ("h2", "8. Private car and rental cars"),
                (
                    "p",
                    "If your manager approves the use of your private car for a business trip, you "
                    "receive a mileage allowance of EUR 0.30 per kilometre. Passengers are not paid "
                    "extra. Parking fees are reimbursed; fines for traffic or parking offences are "
                    "never reimbursed.",
                ),
                (
                    "p",
                    "Rental cars are booked through TravelDesk in the compact category. A larger car "
                    "can be booked when three or more employees travel together. Always return the "
                    "car with a full tank, because refuelling by the rental company is very "
                    "expensive.",
                ),
            ],
            [
                ("h2", "9. Submitting expense claims"),
                (
                    "p",
                    "Submit your expense claim in Spendwise within 30 days after the end of the trip. "
                    "Photograph every receipt with the Spendwise app; you do not need to keep paper "
                    "receipts once they have been uploaded and the claim has been approved. Claims "
                    "submitted later than 30 days after the trip are reimbursed only with the "
                    "approval of your department head.",
                ),
                (
                    "p",
                    "If a receipt is lost, you can submit a self-declaration (Eigenbeleg) in Spendwise "
                    "for amounts up to EUR 50. Lost receipts above EUR 50 are not reimbursed.",
                ),
                (
                    "p",
                    "Expense claims that are approved by the 20th of a month are reimbursed with that "
                    "month's payroll. Claims approved later are paid with the following month's "
                    "payroll.",
                ),
                ("h2", "10. Approval limits"),
                (
                    "ul",
                    [
                        "Up to EUR 2,500 per claim: approval by your manager",
                        "EUR 2,500 to EUR 10,000 per claim: approval by your department head",
                        "More than EUR 10,000 per claim: approval by the CFO",
                    ],
                ),
                ("h2", "11. Corporate credit card"),
                (
                    "p",
                    "Employees who make at least 4 business trips per year can apply for a corporate "
                    "Visa card. The card has a monthly limit of EUR 5,000 and is settled by the company; "
                    "every card transaction must still be matched with a receipt in Spendwise within "
                    "30 days. Private payments with the corporate card are not allowed.",
                ),
                ("h2", "12. Client entertainment"),
                (
                    "p",
                    "Business meals with customers or partners are reimbursed up to EUR 70 per "
                    "person, including drinks and tip. The receipt must list the names and companies "
                    "of all participants and the business purpose. Alcohol is reimbursed only as "
                    "part of client entertainment.",
                ),
                ("h2", "13. Costs that are not reimbursed"),
                (
                    "ul",
                    [
                        "minibar items and pay-TV in hotels",
                        "traffic and parking fines",
                        "upgrades, lounge access and frequent flyer fees",
                        "costs of private extensions of a business trip",
                        "loss of private belongings during a trip",
                    ],
                ),
                (
                    "p",
                    "Contact: travel coordinator Paul Neumann, extension 2610; Finance, "
                    "expenses@northwind-lattice.example.",
                ),
            ],
        ],
    },
    {
        "path": "handbook/benefits-overview.pdf",
        "title": "Benefits Overview 2025",
        "subtitle": "Northwind Lattice GmbH - People & Culture",
        "subject": "Company pension, insurance, mobility, wellbeing, learning budget and sabbatical",
        "pages": [
            [
                (
                    "p",
                    "This overview summarises the benefits that Northwind Lattice offers in addition "
                    "to your salary. Unless stated otherwise, benefits are available to all "
                    "permanent and fixed-term employees from their first day, including part-time "
                    "employees. Interns and working students receive the benefits marked as "
                    "available to them. The benefits team of People & Culture can be reached at "
                    "extension 2230 or benefits@northwind-lattice.example.",
                ),
                ("h2", "Company pension scheme"),
                (
                    "p",
                    "Employees in Germany can join the company pension scheme, which is operated by "
                    "the Elbe Pensionskasse. Northwind Lattice contributes 4 percent of your gross "
                    "base salary every month, even if you do not contribute yourself. If you convert "
                    "part of your salary into pension contributions, the company matches your "
                    "contribution up to an additional 2 percent of your gross base salary.",
                ),
                (
                    "p",
                    "Company contributions vest immediately: the entitlements are yours even if you "
                    "leave Northwind Lattice after a short time. You can join the scheme at any time "
                    "by submitting the form in Lattice People; changes to your own contribution are "
                    "possible once per calendar year.",
                ),
                (
                    "p",
                    "Employees in Lisbon take part in a Portuguese pension plan with a company "
                    "contribution of 3 percent of the gross base salary.",
                ),
                ("h2", "Insurance"),
                (
                    "p",
                    "All employees are covered by a group accident insurance that applies 24 hours a "
                    "day, worldwide, also in private life. The insured sum is EUR 250,000 in case of "
                    "permanent disability. No registration is needed.",
                ),
                (
                    "p",
                    "Employees in Lisbon receive private health insurance with Saude Mais, including "
                    "dental care. Family members can be added at the company's group rate.",
                ),
                ("h2", "Anniversary bonus"),
                (
                    "p",
                    "To thank you for your loyalty, Northwind Lattice pays an anniversary bonus of "
                    "EUR 500 after 5 years of service and EUR 1,000 after 10 years of service, with "
                    "the salary of the month in which the anniversary falls.",
                ),
            ],
            [
                ("h2", "Mobility"),
                (
                    "p",
                    "Employees in Germany receive the Deutschlandticket, the monthly public transport "
                    "ticket valid on all local and regional transport in Germany, fully paid by the "
                    "company. The ticket is ordered in Lattice People and can be used privately as "
                    "well. Employees who do not want the Deutschlandticket do not receive a cash "
                    "equivalent.",
                ),
                (
                    "p",
                    "Employees in Lisbon receive a monthly reimbursement of EUR 40 for the Navegante "
                    "public transport pass.",
                ),
                (
                    "p",
                    "Bike leasing: through our partner Radwerk, employees in Germany can lease a bicycle "
                    "or e-bike with a retail price of up to EUR 7,000 by salary conversion. The lease "
                    "runs for 36 months; the company pays the insurance and the annual service. At the "
                    "end of the lease you can buy the bike from Radwerk for a residual value. Working "
                    "students and employees in the probation period are not eligible.",
                ),
                ("h2", "Sports and wellbeing"),
                (
                    "p",
                    "Northwind Lattice subsidises your Urban Sports Club membership with EUR 30 per "
                    "month, regardless of the membership level you choose. The subsidy is paid "
                    "directly to Urban Sports Club; you pay only the difference. Registration is "
                    "done through the benefits portal in Lattice People, and memberships can be "
                    "changed or cancelled monthly.",
                ),
                (
                    "p",
                    "In Leipzig, a physiotherapist offers 20-minute back and neck sessions in the "
                    "office every Tuesday. The sessions are free and can be booked on Gleis.",
                ),
                ("h2", "Employee Assistance Programme"),
                (
                    "p",
                    "The Employee Assistance Programme, Lifeline EAP, offers free and confidential "
                    "counselling for personal, family, financial and work-related questions. Lifeline "
                    "EAP is available 24 hours a day at the free phone number 0800 100 2030, in "
                    "English, German and Portuguese. You can receive up to 6 free counselling sessions "
                    "per topic with a qualified psychologist, on the phone, by video or in person. "
                    "Northwind Lattice never learns who used the service. Family members living in "
                    "your household can use the programme as well.",
                ),
            ],
            [
                ("h2", "Learning budget"),
                (
                    "p",
                    "Every employee has a personal learning budget of EUR 1,500 per calendar year for "
                    "courses, conferences, certifications and books related to their work. In "
                    "addition, you can take 3 learning days per year, for example to attend a "
                    "conference or to study for a certification. Unused budget and learning days "
                    "cannot be carried over into the following year. Part-time employees receive the "
                    "full budget.",
                ),
                (
                    "p",
                    "Learning activities are requested in the Learn module of Lattice People and "
                    "approved by your manager. For single learning activities costing more than "
                    "EUR 3,000, for example a part-time degree programme, the company can pay a "
                    "larger amount on the basis of an individual agreement, which may include a "
                    "repayment clause if you leave within 24 months.",
                ),
                ("h2", "Language courses"),
                (
                    "p",
                    "German courses in Leipzig and Hamburg and Portuguese courses in Lisbon are free "
                    "for all employees and take place during working hours, twice a week for 90 "
                    "minutes, at levels A1 to C1. Language courses do not reduce your learning budget.",
                ),
                ("h2", "Sabbatical"),
                (
                    "p",
                    "After 3 years of service, employees can take an unpaid sabbatical of 1 to 3 "
                    "months. The sabbatical must be requested at least 6 months in advance and "
                    "approved by your manager and People & Culture. Your position is guaranteed "
                    "during the sabbatical, and your company pension and accident insurance continue. "
                    "A second sabbatical is possible 3 years after the end of the first one.",
                ),
                ("h2", "Employee discounts"),
                (
                    "p",
                    "Through the Corporate Benefits platform, employees receive discounts at more than "
                    "800 brands, for example for electronics, fashion and travel. Access is available "
                    "from the benefits portal in Lattice People.",
                ),
                ("h2", "Taxes"),
                (
                    "p",
                    "Some benefits, such as the Deutschlandticket and the company pension contribution, "
                    "are tax-free within legal limits; others are taxed as part of your salary. Your "
                    "payslip shows the taxable amount of each benefit separately.",
                ),
            ],
        ],
    },
    {
        "path": "engineering/incident-severity-levels.pdf",
        "title": "Incident Severity Levels and Response",
        "subtitle": "Northwind Lattice GmbH - Engineering - SRE team - version 3.2, January 2025",
        "subject": "Severity definitions SEV1-SEV4, response times, communication and postmortems",
        "pages": [
            [
                (
                    "p",
                    "This document defines how production incidents are classified at Northwind "
                    "Lattice and what each severity level means for response, communication and "
                    "follow-up. The severity is set by the first responder when the incident is "
                    "declared and can be raised or lowered at any time by the incident commander. "
                    "When in doubt, choose the higher severity.",
                ),
                (
                    "p",
                    "Incidents are declared with the command /incident declare in Lattice Chat, which "
                    "creates the incident channel, the incident record and the status page draft.",
                ),
                ("h2", "SEV1 - Critical"),
                (
                    "p",
                    "A complete outage or severe degradation of a core product for many customers, or "
                    "a security or data incident affecting customer data. Examples: Lattice Route "
                    "cannot create or dispatch tours for more than 10 percent of customers; the API "
                    "gateway returns errors for more than 5 percent of requests for longer than 5 "
                    "minutes; customer data was exposed to another customer; data loss in a production "
                    "database.",
                ),
                ("h2", "SEV2 - Major"),
                (
                    "p",
                    "A major function is unavailable or heavily degraded, but a workaround exists or "
                    "only some customers are affected. Examples: the Lattice Driver app cannot upload "
                    "proof-of-delivery photos; optimisation jobs take more than three times longer "
                    "than usual; a single large customer cannot log in.",
                ),
                ("h2", "SEV3 - Minor"),
                (
                    "p",
                    "A non-critical function is impaired, with limited impact on customers. Examples: "
                    "a report in Lattice Insights shows data with a delay of several hours; email "
                    "notifications are delayed by up to one hour; an internal tool is unavailable.",
                ),
                ("h2", "SEV4 - Low"),
                (
                    "p",
                    "Cosmetic problems or issues without noticeable customer impact, such as a "
                    "misaligned button or a wrong translation. SEV4 issues are handled as normal "
                    "tickets in the team's backlog and do not page anybody.",
                ),
            ],
            [
                ("h2", "Response targets"),
                (
                    "ul",
                    [
                        "SEV1: page the primary on-call immediately; an incident commander is assigned within "
                        "10 minutes; the war room is opened at once; work continues around the clock until "
                        "the incident is mitigated.",
                        "SEV2: page the primary on-call immediately; an incident commander is assigned within "
                        "30 minutes; outside working hours work continues until the impact is mitigated.",
                        "SEV3: no page outside working hours; the owning team starts work on the next "
                        "working day at the latest.",
                        "SEV4: handled in the backlog.",
                    ],
                ),
                ("h2", "Roles"),
                (
                    "p",
                    "Every SEV1 and SEV2 incident has an incident commander (IC), who coordinates the "
                    "response but does not debug, a communications lead, who writes the status page "
                    "updates and informs Customer Success, and one or more responders. Incident "
                    "commanders are experienced engineers from the IC roster kept in Klaxon.",
                ),
                ("h2", "War room"),
                (
                    "p",
                    "For SEV1 incidents, the war room is the channel #inc-war-room in Lattice Chat plus "
                    "a permanent conference bridge that can be reached at extension 7777 from any "
                    "office phone. Only people working on the incident should join the bridge; "
                    "everybody else follows the incident channel.",
                ),
                ("h2", "Communication"),
                (
                    "ul",
                    [
                        "SEV1: first public status page update within 20 minutes of declaring the incident, "
                        "then at least every 30 minutes until resolution. The CTO is notified by phone "
                        "within 30 minutes. Customer Success informs key accounts personally.",
                        "SEV2: first status page update within 60 minutes, then at least every 2 hours. The "
                        "VP Engineering is notified in Lattice Chat.",
                        "SEV3: a status page update is optional and decided by the owning team.",
                    ],
                ),
                (
                    "p",
                    "The status page is status.northwind-lattice.example. Status page updates are "
                    "written in plain language, state which products are affected and never name "
                    "individual customers or employees.",
                ),
            ],
            [
                ("h2", "Postmortems"),
                (
                    "p",
                    "A written postmortem is required for every SEV1 and SEV2 incident, and for SEV3 "
                    "incidents when the team thinks there is something to learn. The incident "
                    "commander appoints a postmortem owner before closing the incident.",
                ),
                (
                    "p",
                    "The postmortem draft must be completed within 5 business days of resolving the "
                    "incident, using the template in Bookshelf. It describes the timeline, the impact "
                    "in numbers (affected customers, duration, failed requests), the root causes and "
                    "the contributing factors, what went well, and the action items.",
                ),
                (
                    "p",
                    "Postmortems are blameless: they describe how our systems and processes allowed "
                    "the failure to happen, never who is at fault. Names appear in the timeline only "
                    "as roles, for example 'the on-call engineer'.",
                ),
                ("h2", "Incident Review meeting"),
                (
                    "p",
                    "Every SEV1 and SEV2 postmortem is presented in the weekly Incident Review meeting "
                    "on Thursdays at 14:00 CET, which is open to all of Engineering. The meeting is "
                    "chaired by the SRE lead, Nadia Haddad.",
                ),
                ("h2", "Action items"),
                (
                    "p",
                    "Action items from postmortems are tracked in the Jira project INCFIX. Every action "
                    "item has one owner and a due date. Action items from SEV1 incidents must be "
                    "completed within 30 days; action items from SEV2 incidents within 60 days. "
                    "Overdue INCFIX items are reported to the VP Engineering every month.",
                ),
                ("h2", "Customer credits"),
                (
                    "p",
                    "Our standard contracts promise 99.9 percent monthly availability for the public "
                    "API. If a SEV1 incident causes us to miss this target, customers are entitled "
                    "to a service credit of 10 percent of the monthly fee for every started 0.1 "
                    "percentage point below the target, up to a maximum of 50 percent. Credits are "
                    "calculated by Finance from the incident record, so the start and end times of "
                    "customer impact must be recorded accurately.",
                ),
            ],
        ],
    },
    {
        "path": "hr-only/salary-bands-2025.pdf",
        "title": "Salary Bands 2025",
        "subtitle": "STRICTLY CONFIDENTIAL - People & Culture only - document code HR-BANDS-2025-KESTREL",
        "subject": "Salary bands L1-L7 for Germany and Portugal, location allowance, bonus and merit budget",
        "pages": [
            [
                (
                    "p",
                    "This document contains the salary bands of Northwind Lattice GmbH valid from "
                    "1 April 2025. It is classified as Strictly Confidential. It may be shared only "
                    "with members of People & Culture, the management board and, for single bands, "
                    "with hiring managers during an open recruiting process. Owner: Claudia Brenner, "
                    "Head of Total Rewards.",
                ),
                ("h2", "Principles"),
                (
                    "p",
                    "Every role is assigned to one of seven bands, L1 to L7. The band describes the "
                    "scope and impact of the role, not the person. All figures are annual gross base "
                    "salaries for a full-time position of 40 hours per week, excluding variable pay. "
                    "New hires should normally be placed between the band minimum and the midpoint.",
                ),
                ("h2", "Salary bands Germany (Leipzig)"),
                (
                    "ul",
                    [
                        "Band L1: EUR 42,000-50,000 (midpoint EUR 46,000) - e.g. Junior Support Specialist, Office Assistant",
                        "Band L2: EUR 50,000-62,000 (midpoint EUR 56,000) - e.g. Software Engineer I, Recruiter",
                        "Band L3: EUR 62,000-78,000 (midpoint EUR 70,000) - e.g. Software Engineer II, Account Executive",
                        "Band L4: EUR 78,000-96,000 (midpoint EUR 87,000) - e.g. Senior Software Engineer, Senior Product Manager",
                        "Band L5: EUR 96,000-118,000 (midpoint EUR 107,000) - e.g. Staff Engineer, Engineering Manager",
                        "Band L6: EUR 118,000-142,000 (midpoint EUR 130,000) - e.g. Principal Engineer, Director of Engineering",
                        "Band L7: EUR 142,000-170,000 (midpoint EUR 156,000) - e.g. Vice President",
                    ],
                ),
                (
                    "p",
                    "The managing directors are not covered by the bands; their remuneration is set by "
                    "the shareholders' meeting.",
                ),
            ],
            [
                ("h2", "Hamburg location allowance"),
                (
                    "p",
                    "Because of higher living costs, employees whose contractual office is Hamburg "
                    "receive a location allowance of 6 percent on top of the German band figures. The "
                    "allowance is shown as a separate line in the contract and is not part of the "
                    "base salary used for the bonus calculation.",
                ),
                ("h2", "Salary bands Portugal (Lisbon)"),
                (
                    "ul",
                    [
                        "Band L1: EUR 24,000-30,000",
                        "Band L2: EUR 30,000-38,000",
                        "Band L3: EUR 38,000-48,000",
                        "Band L4: EUR 48,000-60,000",
                        "Band L5: EUR 60,000-74,000",
                        "Band L6: EUR 74,000-90,000",
                        "Band L7: EUR 90,000-110,000",
                    ],
                ),
                (
                    "p",
                    "Portuguese salaries are paid in 14 instalments per year (including holiday and "
                    "Christmas allowances); the figures above are the annual totals of all 14 "
                    "instalments.",
                ),
                ("h2", "Fully remote employees"),
                (
                    "p",
                    "Employees with an approved fully remote contract in Germany are paid according to "
                    "the Leipzig bands, without the Hamburg location allowance, regardless of where "
                    "they live.",
                ),
                ("h2", "Compa-ratio reporting"),
                (
                    "p",
                    "The compa-ratio is the salary divided by the band midpoint. People & Culture reports "
                    "the compa-ratio distribution per department to the management board every "
                    "quarter. Employees with a compa-ratio below 0.85 are reviewed with priority in "
                    "the next merit cycle.",
                ),
            ],
            [
                ("h2", "Variable pay"),
                (
                    "p",
                    "Employees in bands L1 to L4 do not have individual bonus targets; they take part in "
                    "the company profit-sharing pool, which was EUR 1,150 per full-time employee for "
                    "the 2024 financial year. Bonus targets as a percentage of base salary apply from "
                    "band L5:",
                ),
                (
                    "ul",
                    [
                        "Band L5: target bonus 10 percent",
                        "Band L6: target bonus 15 percent",
                        "Band L7: target bonus 20 percent",
                    ],
                ),
                (
                    "p",
                    "Sales roles have separate commission plans with an on-target split of 70 percent "
                    "base salary and 30 percent commission; these are set by the VP Sales and Finance.",
                ),
                ("h2", "Merit increase budget 2025"),
                (
                    "p",
                    "The merit increase budget for the 2025 cycle is 3.8 percent of the base salary "
                    "payroll of each department. Individual increases are based on the performance "
                    "rating and the position in the band. No individual merit increase may exceed 12 "
                    "percent without the approval of the CFO.",
                ),
                ("h2", "Promotions"),
                (
                    "p",
                    "A promotion to the next band comes with a salary increase of at least 8 percent, or "
                    "up to the new band minimum, whichever is higher. Promotions are decided twice a "
                    "year, in April and October, by a promotion committee per department.",
                ),
                ("h2", "Approvals"),
                (
                    "ul",
                    [
                        "Salary within the band: approved by the VP of the department",
                        "Salary above the band midpoint for a new hire: VP People & Culture",
                        "Salary above the band maximum: CFO and VP People & Culture together",
                    ],
                ),
                (
                    "p",
                    "Band figures are reviewed every year in February using external benchmark data. "
                    "The next review will take effect on 1 April 2026.",
                ),
            ],
        ],
    },
]

DOCX_DOCS = [
    {
        "path": "handbook/onboarding-guide.docx",
        "title": "Onboarding Guide for New Employees",
        "subject": "First day, first week, mandatory trainings and probation period",
        "blocks": [
            (
                "p",
                "Welcome to Northwind Lattice! This guide explains what happens before your first day, "
                "during your first day and week, and during your probation period. Your onboarding "
                "coordinator is Emma Schubert from People & Culture, who can be reached at extension "
                "2240 or onboarding@northwind-lattice.example.",
            ),
            ("h2", "Before your first day"),
            (
                "ul",
                [
                    "About three weeks before your start date you receive an invitation to Lattice People, "
                    "where you upload your tax ID, social security number and bank details.",
                    "You choose your laptop model in Lattice People at least two weeks before your start date.",
                    "If you work fully remotely, your laptop is shipped to you so that it arrives at least 5 "
                    "working days before your first day. Please do not switch it on before your first day.",
                    "Your manager assigns you an onboarding buddy from your team and sends you a personal "
                    "welcome message with the plan for your first week.",
                ],
            ),
            ("h2", "Your first day"),
            (
                "p",
                "On your first day, please arrive at 09:30 at the reception of your office. Your "
                "onboarding coordinator or the office manager will welcome you and give you your "
                "employee badge. New employees always start on a Monday, or on a Tuesday if the "
                "Monday is a public holiday.",
            ),
            (
                "ol",
                [
                    "09:30 - Welcome at reception and office tour",
                    "10:00 - Welcome breakfast with all new joiners of the week",
                    "10:30 - IT setup: you set up your laptop, accounts and security keys together with "
                    "the IT team",
                    "12:30 - Lunch with your manager and your onboarding buddy",
                    "14:00 - Introduction to your team and your first tasks",
                ],
            ),
            ("h2", "Your first week"),
            (
                "p",
                "During your first week you meet your onboarding buddy every day for 30 minutes. Your "
                "buddy is an experienced colleague from your team who helps you with all practical "
                "questions, from finding the right channel in Lattice Chat to the unwritten rules of "
                "the team. The buddy programme lasts for your first three months.",
            ),
            (
                "p",
                "Remote employees spend their first week in the Leipzig office. Travel and hotel "
                "costs for this week are paid by the company and booked by People & Culture.",
            ),
            ("h2", "Lattice 101"),
            (
                "p",
                "Lattice 101 is a half-day introduction to the company, our products and our customers. "
                "It takes place on the first Wednesday of every month from 09:30 to 13:00 in Leipzig and is streamed "
                "to all offices. The CEO, Henrike Vogt, opens every session personally. You attend "
                "the first Lattice 101 after your start date.",
            ),
            ("h2", "Mandatory trainings"),
            (
                "p",
                "The following online trainings must be completed within your first 30 days. You find "
                "them in the Learn module of Lattice People:",
            ),
            (
                "ul",
                [
                    "Security awareness (about 45 minutes)",
                    "Data protection and GDPR basics (about 30 minutes)",
                    "Code of Conduct and speaking up (about 20 minutes)",
                ],
            ),
            (
                "p",
                "Engineers additionally complete the Secure Coding course within their first 60 days.",
            ),
            ("h2", "Check-ins after 30, 60 and 90 days"),
            (
                "p",
                "Your manager meets you after 30, 60 and 90 days for a structured check-in. In the "
                "30-day check-in you agree on your goals for the probation period; in the 60-day and "
                "90-day check-ins you review progress and give feedback on your onboarding. On day 45 "
                "you receive a short onboarding survey from People & Culture; it takes five minutes and "
                "helps us to improve the onboarding for future colleagues.",
            ),
            ("h2", "Probation period"),
            (
                "p",
                "The probation period is 6 months. During this time, both sides can terminate the "
                "employment contract with a notice period of two weeks. In week 22 your manager holds "
                "a probation review meeting with you and confirms in Lattice People whether you pass "
                "the probation period. If there are concerns, your manager must raise them with you "
                "no later than the 90-day check-in, so that you have time to address them.",
            ),
        ],
    },
    {
        "path": "handbook/parental-leave.docx",
        "title": "Parental Leave and Family Support",
        "subject": "Maternity protection, parental leave, partner leave, family top-up and childcare subsidy",
        "blocks": [
            (
                "p",
                "Northwind Lattice wants to make it easy to combine a career and a family. This guide "
                "explains the statutory rules for employees in Germany and the additional benefits the "
                "company offers. Employees in Lisbon are covered by the Portuguese parental leave rules "
                "(licença parental); the company benefits in this guide apply to them as well, unless "
                "stated otherwise. Your contact person for all questions is Katrin Weiss, Parental and "
                "Family Liaison in People & Culture, extension 2214.",
            ),
            ("h2", "Maternity protection"),
            (
                "p",
                "Please inform People & Culture as soon as you know that you are pregnant, so that we "
                "can protect your health at work. The information is treated confidentially and is "
                "shared with your manager only with your consent. Maternity protection starts 6 "
                "weeks before the expected date of birth and ends 8 weeks after the birth (12 weeks "
                "after premature or multiple births). During this time you receive maternity pay "
                "from your health insurer plus a top-up from Northwind Lattice to your full net "
                "salary, as required by law.",
            ),
            ("h2", "Parental leave (Elternzeit)"),
            (
                "p",
                "Each parent can take up to 3 years of parental leave per child. Up to 24 months of it "
                "can be taken between the child's third and eighth birthday. The leave can be split "
                "into up to three periods per parent.",
            ),
            (
                "ul",
                [
                    "Parental leave that starts before the child's third birthday must be requested in "
                    "writing at least 7 weeks before it begins.",
                    "Parental leave between the third and eighth birthday must be requested at least 13 weeks "
                    "before it begins.",
                    "Submit the request with the form in Lattice People and send the signed original to "
                    "People & Culture; the written form is a legal requirement.",
                ],
            ),
            (
                "p",
                "During parental leave you can work part-time for up to 32 hours per week. Part-time "
                "work during parental leave is requested together with the leave or at least 7 weeks "
                "before it begins.",
            ),
            ("h2", "Parental allowance (Elterngeld)"),
            (
                "p",
                "Parental allowance is paid by the state, not by the employer. You apply for it at the "
                "parental allowance office of your city. People & Culture issues the salary certificate "
                "you need for the application within 5 working days of your request.",
            ),
            ("h2", "Family Top-Up"),
            (
                "p",
                "In addition to the statutory parental allowance, Northwind Lattice pays a Family "
                "Top-Up during the first 8 weeks of parental leave. The Family Top-Up raises your "
                "income to 80 percent of your average net salary of the last 12 months before the "
                "birth. It is available to every parent who has been employed at Northwind Lattice "
                "for at least 6 months when the parental leave begins, and can be claimed once per "
                "child and parent.",
            ),
            ("h2", "Partner leave"),
            (
                "p",
                "The partner of the birth parent, including adoptive parents, receives 10 working days "
                "of paid partner leave. Partner leave must be taken within 4 months after the birth or "
                "adoption and can be split into two blocks. It does not reduce your vacation "
                "entitlement or your parental leave.",
            ),
            ("h2", "Returning to work"),
            (
                "p",
                "About 4 weeks before your return, your manager invites you to a Welcome Back meeting "
                "to talk about your role, your working hours and any changes in the team. During the "
                "first 4 weeks after your return you may work from home on up to four days per week. "
                "Your laptop and accounts remain active during parental leave unless you ask us to "
                "deactivate them.",
            ),
            ("h2", "Childcare subsidy"),
            (
                "p",
                "For each child who is not yet attending school, Northwind Lattice pays a tax-free "
                "childcare subsidy of EUR 150 per month towards the costs of a nursery, "
                "kindergarten or childminder. Upload the childcare contract in Lattice People once; "
                "the subsidy is paid with your salary from the following month. In Lisbon the subsidy "
                "is paid as a childcare voucher of the same amount.",
            ),
            ("h2", "Emergency childcare"),
            (
                "p",
                "If your regular childcare is not available, for example because the nursery is closed, "
                "you can use the emergency childcare service KidsCare up to 10 days per year at no cost. "
                "Bookings are made at least one day in advance through the benefits portal.",
            ),
        ],
    },
    {
        "path": "engineering/code-review-guidelines.docx",
        "title": "Code Review Guidelines",
        "subject": "Approvals, pull request size, review turnaround, commit messages and merging",
        "blocks": [
            (
                "p",
                "Every change to production code at Northwind Lattice is reviewed by at least one other "
                "engineer. Code review protects our customers from defects, spreads knowledge across "
                "the team and keeps our code base consistent. These guidelines apply to all "
                "repositories in the GitHub organisation northwind-lattice. They are maintained by the "
                "engineering practices guild; proposals for changes are made as pull requests to the "
                "repository engineering-handbook.",
            ),
            ("h2", "Required approvals"),
            (
                "ul",
                [
                    "Every pull request needs at least 1 approval from an engineer other than the author.",
                    "Changes to the directories payments/, auth/ or tenant-isolation/ of any repository need "
                    "2 approvals, at least one of them from the owning team listed in the CODEOWNERS file.",
                    "Changes to Terraform code in infra-live need 2 approvals from the Platform group.",
                    "Authors may never approve or merge their own pull requests. Administrator overrides are "
                    "logged and reviewed monthly by the Security team.",
                ],
            ),
            ("h2", "Size of pull requests"),
            (
                "p",
                "Small pull requests are reviewed faster and more thoroughly. Keep pull requests below "
                "400 changed lines, excluding generated code and lock files. Larger changes should be "
                "split into a series of pull requests or hidden behind a feature flag. Reviewers may "
                "ask authors to split a pull request with more than 400 changed lines.",
            ),
            ("h2", "Review turnaround"),
            (
                "p",
                "Reviewers give a first response within 1 business day of being requested. If you "
                "cannot review in time, say so and suggest another reviewer. Pull requests that have "
                "been waiting for more than 2 business days are posted automatically in the team "
                "channel by the review bot Nudge.",
            ),
            ("h2", "What reviewers look at"),
            (
                "ol",
                [
                    "Correctness: does the change do what it claims, including edge cases and error handling?",
                    "Tests: are there tests for the new behaviour, and do they fail without the change?",
                    "Security: input validation, tenant isolation, secrets, and permissions.",
                    "Operability: logging, metrics, feature flags and a plan for rollback.",
                    "Readability: naming, structure and comments that explain why, not what.",
                ],
            ),
            (
                "p",
                "Prefix optional comments with 'nit:' so the author knows they are not blocking. "
                "Discuss style questions in the guild, not in individual reviews; formatting is "
                "enforced automatically by the linters in CI.",
            ),
            ("h2", "Commit messages"),
            (
                "p",
                "Commit messages follow the Conventional Commits format, for example "
                "'fix(route-planner): handle empty time windows'. The allowed types are feat, fix, "
                "refactor, perf, test, docs, build, ci and chore. Every pull request title must "
                "reference a Jira ticket, for example 'ROUTE-1234'.",
            ),
            ("h2", "Merging"),
            (
                "ul",
                [
                    "All CI checks must pass before merging; flaky tests are quarantined, not ignored.",
                    "Pull requests are merged with squash merge, so that the main branch has one commit per "
                    "pull request.",
                    "The author merges the pull request after approval, not the reviewer.",
                    "Branches are deleted automatically after merging.",
                ],
            ),
            ("h2", "Reviews for hotfixes"),
            (
                "p",
                "During a declared SEV1 or SEV2 incident, hotfix pull requests follow the reduced rules "
                "described in the deploy procedure. The normal review rules apply to the follow-up pull "
                "request.",
            ),
        ],
    },
    {
        "path": "hr-only/performance-review-process.docx",
        "title": "Performance Review Process 2025",
        "subject": "Annual review cycle, rating scale, calibration, distribution guideline and PIPs",
        "blocks": [
            (
                "p",
                "Classification: Confidential - People & Culture and people managers only. This "
                "document describes the annual performance review cycle of Northwind Lattice GmbH for "
                "2025. The process is owned by the People & Culture team and run in the Growth module "
                "of Lattice People. Calibration notes are Strictly Confidential and are stored only in "
                "the restricted HR space under the code name PR-2025-OSPREY.",
            ),
            ("h2", "Timeline of the 2025 cycle"),
            (
                "ul",
                [
                    "Self-assessment: 3 to 14 November 2025",
                    "Peer feedback: 3 to 21 November 2025; every employee nominates 3 to 5 peers, and the "
                    "manager confirms the list",
                    "Manager assessment and proposed rating: by 28 November 2025",
                    "Calibration meetings per department: 1 to 12 December 2025",
                    "Review conversations with every employee: by 23 January 2026",
                    "Merit increases take effect on 1 April 2026",
                ],
            ),
            (
                "p",
                "Employees who joined after 1 September 2025 do not receive a rating in this cycle; "
                "they have a feedback conversation instead.",
            ),
            ("h2", "Rating scale"),
            (
                "ol",
                [
                    "5 - Exceptional: consistently far exceeds the expectations of the role and shapes work "
                    "beyond the team.",
                    "4 - Exceeds expectations: regularly delivers beyond the expectations of the role.",
                    "3 - Meets expectations: reliably delivers what the role requires. This is the expected "
                    "rating for most employees.",
                    "2 - Partially meets expectations: delivers part of what the role requires; improvement "
                    "is needed.",
                    "1 - Does not meet expectations: significant gaps in results or behaviour.",
                ],
            ),
            ("h2", "Calibration"),
            (
                "p",
                "In calibration meetings, the managers of one department discuss all proposed ratings "
                "together with the HR business partner, to ensure that ratings are fair and consistent "
                "across teams. Each calibration meeting is chaired by the HR business partner, who does "
                "not vote. Ratings may change in calibration; managers may not tell employees their "
                "proposed rating before calibration is completed.",
            ),
            (
                "p",
                "Distribution guideline: at most 10 percent of employees in a department should receive "
                "rating 5 and at most 25 percent rating 4. Departments that exceed the guideline must "
                "justify the deviation to the VP People & Culture. There is no quota for low ratings.",
            ),
            ("h2", "Link to pay"),
            (
                "p",
                "The merit increase matrix links the rating and the position in the salary band. As a "
                "guideline for the 2025 cycle: rating 5 receives 7 to 10 percent, rating 4 receives 4 "
                "to 6 percent, rating 3 receives 2 to 4 percent, and ratings 1 and 2 receive no merit "
                "increase. Employees with rating 4 or 5 in two consecutive cycles are automatically "
                "discussed for promotion.",
            ),
            ("h2", "Performance improvement plan"),
            (
                "p",
                "Employees with rating 1, and employees with rating 2 for the second time in a row, "
                "receive a performance improvement plan (PIP). A PIP lasts 60 days and contains at most "
                "five concrete, measurable goals. The manager and the HR business partner meet the "
                "employee every two weeks during the PIP. A PIP is not a disciplinary measure; if it is "
                "not successful, the next steps are decided by the Employee Relations Lead.",
            ),
            ("h2", "Mid-year check-in"),
            (
                "p",
                "In June, every employee has a mid-year check-in with their manager. The check-in has no "
                "rating; it reviews goals and development and is documented in the Growth module by "
                "30 June.",
            ),
            ("h2", "Appeals"),
            (
                "p",
                "Employees who disagree with their rating can request a review by their manager's "
                "manager within 14 days of the review conversation. The works council may be consulted "
                "at the employee's request.",
            ),
        ],
    },
    {
        "path": "hr-only/disciplinary-procedure.docx",
        "title": "Disciplinary Procedure",
        "subject": "Investigations, warnings, works council involvement and dismissal for misconduct",
        "blocks": [
            (
                "p",
                "Classification: Strictly Confidential - People & Culture only. This procedure "
                "describes how People & Culture handles suspected misconduct by employees of Northwind "
                "Lattice GmbH in Germany. Its aims are a fair process for the employee, consistent "
                "decisions and compliance with German labour law. The procedure is owned by the "
                "Employee Relations Lead, Veronika Lindner. Performance problems without misconduct are "
                "handled through the performance improvement process, not through this procedure.",
            ),
            ("h2", "Opening a case"),
            (
                "p",
                "Managers who become aware of possible misconduct contact the Employee Relations Lead "
                "before they speak to the employee about it. Every case receives a case number in the "
                "format ER-2025-### (for example ER-2025-017) and is documented in the restricted "
                "employee relations folder. Case documents are never stored in the regular personnel "
                "file until a measure has been decided.",
            ),
            ("h2", "Investigation"),
            (
                "ul",
                [
                    "The investigation is led by the HR business partner of the department, supported by the "
                    "Employee Relations Lead, and should be completed within 10 working days.",
                    "The employee is informed of the allegations and is always heard before a decision is "
                    "made. The employee may bring a member of the works council to every meeting.",
                    "Witnesses are interviewed separately, and the interview notes are signed by the witness.",
                    "In cases of suspected gross misconduct, the employee can be released from work on full "
                    "pay during the investigation.",
                ],
            ),
            ("h2", "Stages of disciplinary measures"),
            (
                "ol",
                [
                    "Verbal warning: documented in a short file note; it is removed from the file after 12 "
                    "months.",
                    "Written warning (Abmahnung): describes the misconduct precisely, states the expected "
                    "behaviour and warns that repeated misconduct may lead to dismissal.",
                    "Final written warning: used when misconduct is repeated after a written warning.",
                    "Dismissal: ordinary dismissal, or extraordinary dismissal without notice for gross "
                    "misconduct.",
                ],
            ),
            (
                "p",
                "Written warnings and final written warnings are signed by the VP People & Culture and "
                "the employee's manager. They are removed from the personnel file after 24 months if "
                "there has been no further misconduct of the same kind. The employee may add a written "
                "statement to any warning in the file.",
            ),
            ("h2", "Gross misconduct"),
            (
                "p",
                "Examples of gross misconduct that can justify dismissal without notice are theft or "
                "fraud, including expense fraud; violence or threats of violence; sexual harassment; "
                "intentional disclosure of Strictly Confidential information; and working for a "
                "competitor during employment. An extraordinary dismissal must be issued within 2 weeks "
                "of the date on which the company learned of the decisive facts (section 626 of the "
                "German Civil Code). The investigation must therefore start without delay.",
            ),
            ("h2", "Involvement of the works council"),
            (
                "p",
                "Before any dismissal, the works council must be heard under section 102 of the Works "
                "Constitution Act. The hearing is prepared by the Employee Relations Lead and sent to "
                "the chair of the works council, Stefan Hoyer. A dismissal issued without a proper "
                "hearing is invalid. Warnings do not require the involvement of the works council, but "
                "the works council receives an anonymised quarterly report of all disciplinary measures.",
            ),
            ("h2", "Decision-making authority"),
            (
                "ul",
                [
                    "Verbal warning: the manager, after consulting the HR business partner",
                    "Written warning and final written warning: VP People & Culture",
                    "Dismissal: a managing director together with the VP People & Culture",
                ],
            ),
            ("h2", "Confidentiality"),
            (
                "p",
                "Everybody involved in a disciplinary case must keep it confidential. Information is "
                "shared only with people who need it to handle the case. The outcome of a case is not "
                "announced to the team; if the employee leaves, the team is told only the last working "
                "day.",
            ),
        ],
    },
]


# --------------------------------------------------------------------------------------------
# PDF


class HandbookPDF(FPDF):
    doc_title = ""

    def footer(self):
        self.set_y(-15)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 8, f"{AUTHOR} - {self.doc_title} - Page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0, 0, 0)


def _check_pdf_text(text: str, where: str) -> None:
    bad = sorted({c for c in text if ord(c) > 126 or (ord(c) < 32 and c != "\n")})
    if bad:
        raise SystemExit(f"{where}: non-ASCII characters not allowed in PDFs: {bad!r}")


def build_pdf(spec: dict) -> bytes:
    pdf = HandbookPDF(format="A4")
    pdf.doc_title = spec["title"]
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.set_title(spec["title"])
    pdf.set_author(AUTHOR)
    pdf.set_subject(spec["subject"])
    pdf.set_creator("sample_kb/_build.py (fpdf2)")
    pdf.set_creation_date(FIXED_DATE)
    pdf.alias_nb_pages()
    for number, blocks in enumerate(spec["pages"], start=1):
        pdf.add_page()
        if number == 1:
            pdf.set_font("Helvetica", "B", 20)
            pdf.multi_cell(0, 10, spec["title"], new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Helvetica", "I", 10)
            pdf.multi_cell(0, 6, spec["subtitle"], new_x="LMARGIN", new_y="NEXT")
            pdf.ln(4)
        for kind, content in blocks:
            _check_pdf_text(
                content if isinstance(content, str) else "\n".join(content), spec["path"]
            )
            if kind == "h2":
                pdf.ln(2)
                pdf.set_font("Helvetica", "B", 13)
                pdf.multi_cell(0, 7, content, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(1)
            elif kind == "p":
                pdf.set_font("Helvetica", "", 10.5)
                pdf.multi_cell(0, 5.5, content, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(2)
            elif kind in ("ul", "ol"):
                pdf.set_font("Helvetica", "", 10.5)
                for i, item in enumerate(content, start=1):
                    marker = "-" if kind == "ul" else f"{i}."
                    pdf.set_x(pdf.l_margin + 2)
                    pdf.cell(6, 5.5, marker)
                    pdf.multi_cell(0, 5.5, item, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(2)
            else:
                raise ValueError(kind)
        if pdf.page_no() != number:
            raise SystemExit(f"{spec['path']}: page {number} overflowed; shorten it")
    return bytes(pdf.output())


# --------------------------------------------------------------------------------------------
# DOCX


def _normalised_zip(data: bytes) -> bytes:
    """Rewrite the zip with fixed timestamps and order so rebuilds are byte-identical."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=(2025, 3, 1, 9, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()


def build_docx(spec: dict) -> bytes:
    doc = Document()
    props = doc.core_properties
    props.title = spec["title"]
    props.author = AUTHOR
    props.last_modified_by = AUTHOR
    props.subject = spec["subject"]
    props.created = FIXED_DATE.replace(tzinfo=None)
    props.modified = FIXED_DATE.replace(tzinfo=None)
    props.revision = 1
    doc.add_heading(spec["title"], level=1)
    for kind, content in spec["blocks"]:
        if kind == "h2":
            doc.add_heading(content, level=2)
        elif kind == "p":
            doc.add_paragraph(content)
        elif kind in ("ul", "ol"):
            style = "List Bullet" if kind == "ul" else "List Number"
            for item in content:
                doc.add_paragraph(item, style=style)
        else:
            raise ValueError(kind)
    buf = io.BytesIO()
    doc.save(buf)
    return _normalised_zip(buf.getvalue())


# --------------------------------------------------------------------------------------------
# Verification of QUESTIONS.json (--check)


class _VisibleText(HTMLParser):
    """Visible body text of an HTML page: skips head, script, style, nav and display:none."""

    SKIP = {"head", "script", "style", "nav", "noscript", "template"}
    VOID = {"meta", "link", "br", "img", "input", "hr"}

    def __init__(self):
        super().__init__()
        self.stack: list[bool] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        style = (dict(attrs).get("style") or "").replace(" ", "").lower()
        hidden = tag in self.SKIP or "display:none" in style
        self.stack.append(hidden or (bool(self.stack) and self.stack[-1]))

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not (self.stack and self.stack[-1]):
            self.parts.append(data)


def extract_pages(path: Path) -> list[str]:
    """Text of a document; PDFs give one string per page, everything else a single string."""
    if path.suffix == ".pdf":
        from pypdf import PdfReader

        return [p.extract_text() or "" for p in PdfReader(path).pages]
    if path.suffix == ".docx":
        return ["\n".join(p.text for p in Document(path).paragraphs)]
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".html":
        parser = _VisibleText()
        parser.feed(text)
        return [" ".join(parser.parts)]
    if path.suffix == ".md":
        text = re.sub(r"[*`]", "", text)
    return [text]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def check_questions() -> int:
    questions = json.loads((ROOT / "QUESTIONS.json").read_text(encoding="utf-8"))
    failures = 0
    for q in questions:
        pages = extract_pages(ROOT / q["source"])
        text = pages[q["page"] - 1] if q.get("page") else "\n".join(pages)
        for needle in q["answer_contains"]:
            if _norm(needle).lower() not in _norm(text).lower():
                failures += 1
                print(f"MISSING {needle!r} in {q['source']} page={q.get('page')}: {q['question']}")
    print(f"{len(questions)} questions checked, {failures} missing answer strings")
    return failures


def main() -> int:
    for spec in PDF_DOCS:
        (ROOT / spec["path"]).write_bytes(build_pdf(spec))
        print(f"wrote {spec['path']} ({len(spec['pages'])} pages)")
    for spec in DOCX_DOCS:
        (ROOT / spec["path"]).write_bytes(build_docx(spec))
        print(f"wrote {spec['path']}")
    if "--check" in sys.argv[1:]:
        return 1 if check_questions() else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
