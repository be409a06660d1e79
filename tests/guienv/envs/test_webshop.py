"""WebShop adapter on recorded observation strings of the real text env (``observation_mode="text"``).

WebShop's engine can't be installed here (princeton-nlp/WebShop's ``web_agent_site`` is not on PyPI in usable form), so the strings below are real
observations published with WebShop agent transcripts: the AgentTuning/AgentInstruct WebShop
example (start, results and item pages with the instruction), an annotated WebShop state with its
``get_available_actions()`` record (results page), and Google's adk-samples personalized-shopping
session (pages without the instruction prefix, ending with a purchase). They are written to files
and read back, as a recorded session would be."""

from __future__ import annotations

import importlib.util
import json

import gymnasium as gym
import numpy as np
import pytest

from guienv.envs.webshop import (
    INSTALL_HINT,
    WebShopConfig,
    WebShopEnv,
    check_action,
    derive_available_actions,
    format_available_actions,
    parse_observation,
    parse_webshop_command,
    score_to_reward,
)

START = ("WebShop [SEP] Instruction: [SEP] i need a long lasting 6.76 fl oz bottle of l'eau d'issey, and price lower "
         "than 100.00 dollars [SEP] Search")
RESULTS = ("Instruction: [SEP] i need a long lasting 6.76 fl oz bottle of l'eau d'issey, and price lower than 100.00 "
           "dollars [SEP] Back to Search [SEP] Page 1 (Total results: 50) [SEP] Next > [SEP] B000VOHH8I [SEP] L'eau "
           "D'issey By Issey Miyake for MenEau De Toilette Spray, 6.7 Fl Oz Bottle [SEP] $64.98 [SEP] B000MJZOPK [SEP] "
           "L'eau d'Issey by Issey Miyake for Women 3.3 oz Eau de Toilette Spray [SEP] $49.98 [SEP] B0012S249E [SEP] "
           "L'eau D'issey By Issey Miyake For Women. Shower Cream 6.7-Ounces [SEP] $31.36 [SEP] B01H8PGKZS [SEP] L'eau "
           "D'Issey FOR MEN by Issey Miyake - 6.7 oz EDT Spray [SEP] $67.97 [SEP] B00G3C8FHE [SEP] L'Eau d'Issey pour "
           "Homme - Eau de Toilette 4.2 fl oz [SEP] $51.25 [SEP] B000R94HRG [SEP] Issey Miyake L'Eau D'Issey Pour Homme "
           "Eau De Toilette Natural Spray [SEP] $44.99 [SEP] B000C214CO [SEP] Issey Miyake L'eau D'issey Eau de Toilette "
           "Spray for Men, 4.2 Fl Oz [SEP] $53.99 [SEP] B0018SBRDC [SEP] Issey Miyake L'eau d'Issey for Women EDT, White, "
           "0.84 Fl Oz [SEP] $27.04 [SEP] B000XEAZ9Y [SEP] L'eau De Issey By Issey Miyake For Men. Eau De Toilette Spray "
           "6.7 Fl Oz [SEP] $67.08 [SEP] B079HZR2RX [SEP] L'eau d'Issey Pure by Issey Miyake for Women 3.0 oz Nectar de "
           "Parfum Spray [SEP] $71.49")
ITEM = ("Instruction: [SEP] i need a long lasting 6.76 fl oz bottle of l'eau d'issey, and price lower than 100.00 dollars "
        "[SEP] Back to Search [SEP] < Prev [SEP] size [SEP] 2.5 fl oz [SEP] 6.76 fl oz (pack of 1) [SEP] L'eau D'issey By "
        "Issey Miyake for MenEau De Toilette Spray, 6.7 Fl Oz Bottle [SEP] Price: $64.98 [SEP] Rating: N.A. [SEP] "
        "Description [SEP] Features [SEP] Reviews [SEP] Buy Now")
# results page with the engine's get_available_actions() recorded beside it
RASPBERRY = ("Instruction: [SEP] i am looking for a 12 ounce jar of raspberry preserve that is nut and gluten free, and "
             "price lower than 130.00 dollars [SEP] Back to Search [SEP] Page 1 (Total results: 50) [SEP] Next > [SEP] "
             "B00CIW2KF6 [SEP] Bonne Maman Preserves, Variety Pack (Strawberry, Raspberry, Wild Blueberry, Cherry), 13 "
             "Ounce Jars (Pack of 4) [SEP] $24.57 [SEP] B08FRV67T5 [SEP] Tiptree Strawberry Preserve, 12 Ounce Jar & 'Old "
             "Times' Orange Marmalade, 12 Ounce Jar [SEP] $26.61 [SEP] B07GP2DT86 [SEP] Sahale Snacks Trail Mix Variety "
             "Pack, 1.5 Ounces (Pack of 12) [SEP] $21.75 [SEP] B08FWFDRQW [SEP] Sahale Snacks Pomegranate Vanilla Flavored "
             "Cashews Glazed Mix, 1.5 Ounces (Pack of 9) & Raspberry Crumble Cashew Trail Mix, 1.5 Ounces, (Pack of 9) "
             "[SEP] $21.42 [SEP] B08XN4P6FZ [SEP] Smucker's Sugar Free Apricot Preserves and Red Raspberry Preserves, "
             "12.75 Ounce (Pack of 2) - with Spice of Life Spreader [SEP] $14.99 [SEP] B003GS5FMQ [SEP] Sahale Snacks "
             "Maple Pecans Glazed Mix, 1.5 Ounces (Pack of 18) [SEP] $19.62 [SEP] B00JIWBMZ8 [SEP] Bonne Maman "
             "Strawberry Preserves, 1 Ounce Jars (Pack of 15) [SEP] $15.0 [SEP] B01CITTQ2S [SEP] Linzer Cookies with "
             "Raspberry Jam, 6 Ounce [2 Count], Gluten Free Cookies | Shortbread Cookies, Kosher, Nut Free, Gluten Free "
             "Dairy Free Cookies by Gluten Free Palace [SEP] $17.56 [SEP] B078WJF5WC [SEP] Guava Gourmet Guava Jam (12oz, "
             "Jar), Fresh Tropical Guava Fruit Jam, All-Natural, Non-GMO, Vegan, Gluten and Cholesterol-Free Premium "
             "Artisan Craft Jam, No Fillers or Preservatives, Certified Kosher [SEP] $12.99 [SEP] B00D8VGDA4 [SEP] Sahale "
             "Snacks Classic Fruit and Nut Trail Mix, 1.5 Ounces (Pack of 18) [SEP] $23.22")
RASPBERRY_AVAILABLE = {"clickables": ["b003gs5fmq", "b00ciw2kf6", "b00d8vgda4", "b00jiwbmz8", "b01cittq2s", "b078wjf5wc",
                                      "b07gp2dt86", "b08frv67t5", "b08fwfdrqw", "b08xn4p6fz", "back to search", "next >"],
                       "has_search_bar": False}
DONE_WON = ("Thank you for shopping with us! [SEP] Your code: [SEP] None [SEP] (Paste it in your MTurk interface.) [SEP] "
            "Purchased [SEP] asin [SEP] B08BZM24XR [SEP] options [SEP] {} [SEP] attrs [SEP] None [SEP] category [SEP] None "
            "[SEP] query [SEP] None [SEP] product category [SEP] None [SEP] Target [SEP] asin [SEP] options [SEP] attrs "
            "[SEP] price upper [SEP] instuction text [SEP] category [SEP] product category [SEP] query [SEP] Goal [SEP] "
            "None [SEP] Reward [SEP] Your score (min 0.0, max 1.0) [SEP] 1.0 [SEP] Reward Details [SEP] None")
# adk-samples session (denim skirt): the same pages without the instruction prefix
ADK_ITEM = ("Back to Search [SEP] < Prev [SEP] size [SEP] 12 plus [SEP] 12 plus petite [SEP] 14 plus [SEP] 14 plus petite "
            "[SEP] 16 plus [SEP] color [SEP] indigo [SEP] natural khaki [SEP] black [SEP] Woman Within Women's Plus Size "
            "Petite Flared Denim Skirt [SEP] Price: $24.41 to $29.95 [SEP] Rating: N.A. [SEP] Description [SEP] Features "
            "[SEP] Reviews [SEP] Buy Now")
ADK_FEATURES = ("Back to Search [SEP] < Prev [SEP] PLUS SIZING: Please reference our size charts [SEP] Full elastic "
                "drawstring waist. A-line silhouette")
ADK_DONE = ("Thank you for shopping with us! [SEP] Your code: [SEP] None [SEP] (Paste it in your MTurk interface.) [SEP] "
            "Purchased [SEP] asin [SEP] B085T3HMGR [SEP] options [SEP] {\"color\": \"natural khaki\", \"size\": \"12 plus\"} "
            "[SEP] attrs [SEP] None [SEP] category [SEP] None [SEP] query [SEP] None [SEP] product category [SEP] None [SEP] "
            "Target [SEP] asin [SEP] options [SEP] attrs [SEP] price upper [SEP] instuction text [SEP] category [SEP] "
            "product category [SEP] query [SEP] Goal [SEP] None [SEP] Reward [SEP] Your score (min 0.0, max 1.0) [SEP] 0.0 "
            "[SEP] Reward Details [SEP] None")


@pytest.fixture
def recorded(tmp_path):
    """Write each observation to a file (one page per file, as logged) and read them back."""
    pages = {"start": START, "results": RESULTS, "item": ITEM, "raspberry": RASPBERRY, "done": DONE_WON,
             "adk_item": ADK_ITEM, "adk_features": ADK_FEATURES, "adk_done": ADK_DONE}
    for name, text in pages.items():
        (tmp_path / f"{name}.txt").write_text(text, encoding="utf-8")
    (tmp_path / "raspberry.available.json").write_text(json.dumps(RASPBERRY_AVAILABLE))
    return {name: (tmp_path / f"{name}.txt").read_text(encoding="utf-8") for name in pages} | {
        "raspberry_available": json.loads((tmp_path / "raspberry.available.json").read_text())}


def test_start_page(recorded):
    page = parse_observation(recorded["start"])
    assert page.kind == "search"
    assert page.instruction.startswith("i need a long lasting 6.76 fl oz bottle")
    avail = derive_available_actions(page)
    assert avail == {"has_search_bar": True, "clickables": ["search"]}
    assert format_available_actions(avail) == ["search[<your query>]"]
    assert check_action(parse_webshop_command("<think>s</think><action>search[l'eau d'issey 6.76 fl oz]</action>"), avail) == (True, "")
    assert not check_action(("click", "search"), avail)[0]  # the engine refuses click[search]
    assert not check_action(("search", ""), avail)[0]


def test_results_page(recorded):
    page = parse_observation(recorded["results"])
    assert page.kind == "results" and page.page == 1 and page.total_results == 50
    assert page.has_next and not page.has_prev
    assert len(page.products) == 10
    assert page.products[0].asin == "B000VOHH8I" and page.products[0].price == "$64.98"
    assert page.products[-1].title.startswith("L'eau d'Issey Pure")
    avail = derive_available_actions(page)
    assert not check_action(("search", "perfume"), avail)[0]  # no search box on a results page
    assert check_action(parse_webshop_command("click[B000VOHH8I]"), avail)[0]  # the engine lower-cases the value
    assert not check_action(parse_webshop_command("click[B999XXXXXX]"), avail)[0]


def test_derived_clickables_match_the_engine_record(recorded):
    page = parse_observation(recorded["raspberry"])
    assert len(page.products) == 10
    assert "[2 Count]" in page.products[7].title  # brackets inside a title do not confuse the split
    derived = derive_available_actions(page)
    real = recorded["raspberry_available"]
    assert derived["has_search_bar"] == real["has_search_bar"]
    assert sorted(derived["clickables"]) == sorted(real["clickables"])
    ok = [check_action(parse_webshop_command(f"click[{c}]"), real)[0] for c in real["clickables"]]
    assert all(ok)


def test_item_and_detail_pages(recorded):
    page = parse_observation(recorded["item"])
    assert page.kind == "item" and page.price == "$64.98" and page.rating == "N.A."
    assert page.title.startswith("L'eau D'issey By Issey Miyake for Men")
    assert page.option_strings == ("size", "2.5 fl oz", "6.76 fl oz (pack of 1)")
    avail = derive_available_actions(page)
    for c in ("< prev", "back to search", "buy now", "description", "6.76 fl oz (pack of 1)"):
        assert check_action(("click", c), avail)[0]
    assert check_action(parse_webshop_command("click[Buy Now]"), avail)[0]
    adk = parse_observation(recorded["adk_item"])
    assert adk.kind == "item" and adk.instruction is None and adk.price == "$24.41 to $29.95"
    assert adk.option_strings[:2] == ("size", "12 plus") and "natural khaki" in adk.option_strings
    feat = parse_observation(recorded["adk_features"])
    assert feat.kind == "detail" and feat.content[0].startswith("PLUS SIZING")
    assert derive_available_actions(feat)["clickables"] == ["back to search", "< prev"]


def test_done_pages_and_reward(recorded):
    won, lost = parse_observation(recorded["done"]), parse_observation(recorded["adk_done"])
    assert won.kind == "done" and won.score == 1.0 and won.purchased_asin == "B08BZM24XR"
    assert lost.score == 0.0 and lost.purchased_asin == "B085T3HMGR"
    assert derive_available_actions(won)["clickables"] == []
    assert score_to_reward(1.0, True) == 10.0
    assert score_to_reward(0.75, True) == 0.0  # verl-agent: 10 only for a perfect purchase
    assert score_to_reward(1.0, False) == 0.0
    assert score_to_reward(0.75, True, WebShopConfig(reward="score")) == 0.75
    assert score_to_reward(0.5, True, WebShopConfig(reward="scaled", success_reward=4)) == 2.0
    with pytest.raises(ValueError):
        score_to_reward(1.0, True, WebShopConfig(reward="bonus"))


@pytest.mark.parametrize("junk", ["", "buy it", "click[", "search[x", "<action>click[</action>", None, 42,
                                  "click[" + "a" * 1000 + "]", "\x00\udcff", "[SEP] [SEP]"])
def test_hostile_text_never_crashes(junk):
    assert parse_webshop_command(junk) is None or isinstance(parse_webshop_command(junk), tuple)
    assert not check_action(parse_webshop_command(junk), {"has_search_bar": False, "clickables": ["buy now"]})[0]
    assert parse_observation(junk if isinstance(junk, str) else str(junk)).kind in ("unknown", "search", "results")


def test_missing_engine_raises_install_instructions():
    if importlib.util.find_spec("web_agent_site") is not None:
        pytest.skip("web_agent_site is installed here")
    with pytest.raises(ImportError) as err:
        WebShopEnv()
    assert "princeton-nlp/WebShop" in str(err.value) and str(err.value) == INSTALL_HINT
    assert isinstance(err.value, gym.error.DependencyNotInstalled)  # Gymnasium's type, and an ImportError
    if "guienv/WebShop-v0" not in gym.registry:
        gym.register("guienv/WebShop-v0", entry_point="guienv.envs.webshop:WebShopEnv")
    with pytest.raises(ImportError):
        gym.make("guienv/WebShop-v0")


class ReplayTextEnv:
    """Serves a recorded WebShop session (``WebAgentTextEnv``'s interface): each step checks the
    action is the recorded one and returns the recorded next page. Clickables come from the page
    text, since this session was logged without them."""

    def __init__(self, first: str, steps: list[tuple[str, str, float, bool]]):
        self.first, self.steps, self.sent = first, steps, []
        self.obs = first

    def reset(self, session=None):
        self.obs, self.k = self.first, 0
        return self.obs, None

    def step(self, action):
        want, obs, reward, done = self.steps[self.k]
        assert action == want, (action, want)
        self.sent.append(action)
        self.k += 1
        self.obs = obs
        return obs, reward, done, None

    def get_available_actions(self):
        return derive_available_actions(parse_observation(self.obs))


def test_env_over_a_recorded_session(recorded):
    replay = ReplayTextEnv(recorded["results"], [
        ("click[b000vohh8i]", recorded["item"], 0.0, False),
        ("click[6.76 fl oz (pack of 1)]", recorded["item"], 0.0, False),
        ("click[buy now]", recorded["done"], 1.0, True),
    ])
    env = WebShopEnv(text_env=replay, n_sessions=3, render_mode="rgb_array")
    obs, info = env.reset(seed=0)
    assert info["instruction"].startswith("i need a long lasting")
    assert "click[b000vohh8i]" in info["admissible_commands"] and "<think>" in info["prompt"]
    obs, r, term, trunc, info = env.step("<think>search box?</think><action>search[perfume]</action>")
    assert info["invalid"] and "search box" in info["invalid_reason"] and obs == recorded["results"] and r == 0
    obs, r, term, trunc, info = env.step("<think>first hit</think><action>click[B000VOHH8I]</action>")
    assert not info["invalid"] and info["page"].kind == "item"
    obs, r, term, trunc, info = env.step("click[6.76 fl oz (pack of 1)]")
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape[2] == 3
    obs, r, term, trunc, info = env.step("<action>click[Buy Now]</action>")
    assert term and r == 10.0 and info["score"] == 1.0 and info["won"]
    assert replay.sent == ["click[b000vohh8i]", "click[6.76 fl oz (pack of 1)]", "click[buy now]"]
    # truncation after max_steps of invalid actions
    env = WebShopEnv(WebShopConfig(max_steps=2), text_env=ReplayTextEnv(recorded["results"], []), n_sessions=1)
    env.reset(seed=0)
    assert not env.step("nonsense")[3]
    assert env.step("nonsense")[3]
