"""The market ``mlops demo`` runs through: months of the synthetic housing market
(``mlops.domain.synthetic``) with one shock every other month, each followed by a calm month.

| month | what moves (the knob of ``MarketConditions``)                                  |
|-------|-------------------------------------------------------------------------------|
| 0     | the market v1 is trained on: rates 4 %, five districts, 55 % houses; the     |
|       | countryside's prices 2.5 times as noisy as the others' (``countryside_noise``)|
| 1, 2  | calm: prices +1 % a month (inflation, every month after too)                 |
| 3     | rates jump from 4 % to 7.5 % (``interest_rate``): buyers pay 24 % less       |
| 5     | a waterfront district opens: 15 % of sales (``new_location_share``)          |
| 7     | buyers move to bigger homes: +25 % floor area (``size_shift``), and to      |
|       | houses rather than condos: 75 % of sales (``house_share``)                   |
| 9     | buyers leave the city: 80 % of sales in the countryside, from 15 %          |
|       | (``countryside_share``), where the model always erred most (cheap houses)    |
| 10-12 | calm: the demo's default run ends here (months 0 to 11)                      |
| 13    | a cooling market: -12 % for the same house (``price_level``)                 |
| 15    | rates ease to 6 %                                                            |
| 17    | the new district takes 30 % of sales                                         |

Why calm months between the shocks: a model retrained on a shocked month is proven on the
next month's traffic before it takes production (a canary, ``[rollout]``); a new shock in that
very month would judge it on a market neither model has seen. Real markets move in steps too.
The default run ends on two calm months, so that its last month is served by what the system
made of the last shock, its canary proven.

The shocks differ in what can see them before the sale prices (the labels) arrive, a few
weeks after the sale (``mlops demo`` posts each half-month's prices one half-month late): the
rate jump and the cooling market move prices for the same inputs (concept drift: no estimate
can see them); the new district is a category no model has seen; bigger homes move the inputs
where the model copes; the move to the countryside moves the inputs to where the model was
always least accurate, which the quality ESTIMATED from traffic sees before the labels do.
``conditions_for_month`` (the generator's own default scenario) drifts continuously instead.
"""

from __future__ import annotations

from dataclasses import replace

from mlops.domain.synthetic import MarketConditions

INFLATION = 1.01  # prices per month, every month
COUNTRYSIDE_SHARE = 0.8  # of sales from month 9 (15 % before)
# Countryside prices are noisier (few comparable sales): the model errs most there, always.
COUNTRYSIDE_NOISE = 0.15  # log-normal sigma, 2.5 times the other districts'


def demo_conditions(month: int) -> MarketConditions:
    """The demo's market in ``month`` (0 is v1's training market)."""
    if month < 0:
        raise ValueError("month must be >= 0")
    conditions = MarketConditions(price_level=INFLATION**month, countryside_noise=COUNTRYSIDE_NOISE)
    if month >= 3:  # what buyers can pay falls with rates (the generator's affordability
        # rule: 7 % a point) and sentiment (3 %)
        conditions = replace(
            conditions, interest_rate=7.5, price_level=conditions.price_level * 0.97
        )
    if month >= 5:
        conditions = replace(conditions, new_location_share=0.15)
    if month >= 7:
        conditions = replace(conditions, size_shift=0.25, house_share=0.75)
    if month >= 9:
        conditions = replace(conditions, countryside_share=COUNTRYSIDE_SHARE)
    if month >= 13:
        conditions = replace(conditions, price_level=conditions.price_level * 0.88)
    if month >= 15:
        conditions = replace(conditions, interest_rate=6.0)
    if month >= 17:
        conditions = replace(conditions, new_location_share=0.30)
    return conditions


SHOCKS = {
    3: "rates jump from 4% to 7.5%: buyers can pay 24% less",
    5: "a waterfront district opens: 15% of sales",
    7: "buyers move to bigger homes: +25% floor area, 75% houses (from 55%)",
    9: f"buyers leave the city: {COUNTRYSIDE_SHARE:.0%} of sales in the countryside (from 15%)",
    13: "a cooling market: -12% for the same house",
    15: "rates ease to 6%",
    17: "the new district takes 30% of sales",
}


def describe_month(month: int) -> str:
    """What moved in ``month``, in a few words."""
    if month == 0:
        return "the market v1 is trained on"
    return SHOCKS.get(month, f"calm: prices +{INFLATION - 1:.0%}")


def conditions_dict(conditions: MarketConditions) -> dict[str, float]:
    return {
        "price_level": round(conditions.price_level, 4),
        "interest_rate": conditions.interest_rate,
        "new_location_share": round(conditions.new_location_share, 4),
        "size_shift": round(conditions.size_shift, 4),
    }
