"""Drives Portcullis's registry browser in a real headless Chromium (Debian's chromium and
chromium-driver, Python selenium). Prints one JSON object of observations; the Swift test
(RegistryBrowserInChromiumTests) asserts on them.

usage: ui_walkthrough.py BASE_URL SCREENSHOT_PATH ALICE_PASSWORD BOB_PASSWORD
"""
import json
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

base, screenshot, alice_password, bob_password = sys.argv[1:5]
observations = {}

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,800"):
    options.add_argument(argument)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.set_page_load_timeout(30)


def submit(button):
    """Clicks a submit button and waits until the next page has replaced this one (a wrong
    password's answer is delayed by throttling)."""
    button.click()
    WebDriverWait(driver, 20).until(expected_conditions.staleness_of(button))


def log_in(user, password):
    driver.get(base + "/ui/login")
    driver.find_element(By.NAME, "username").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(password)
    submit(driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))


def log_out():
    submit(driver.find_element(By.CSS_SELECTOR, "form.logout button"))


try:
    # A wrong password: an error on the login page.
    log_in("alice", "not-her-password")
    observations["wrong_password_error"] = driver.find_element(By.CSS_SELECTOR, ".error").text
    observations["wrong_password_url"] = driver.current_url

    # alice: her repositories and the public ones, nothing of bob's.
    log_in("alice", alice_password)
    observations["after_login_url"] = driver.current_url
    observations["repositories"] = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "ul.repositories li a")]

    # A filter with HTML in it is shown as text.
    driver.get(base + "/ui/?q=%3Cb%3Ebold%3C%2Fb%3E")
    observations["filter_value"] = driver.find_element(By.NAME, "q").get_attribute("value")
    observations["bold_elements"] = len(driver.find_elements(By.CSS_SELECTOR, "main b"))

    # One repository: two tags grouped under one digest, with pull lines to copy.
    driver.get(base + "/ui/")
    submit(driver.find_element(By.LINK_TEXT, "alice/app"))
    sections = driver.find_elements(By.CSS_SELECTOR, "section.digest")
    observations["digest_sections"] = len(sections)
    observations["tags_in_first_section"] = [e.text for e in sections[0].find_elements(By.CSS_SELECTOR, "span.tag")] if sections else []
    observations["pull_lines"] = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "code.pull")]
    observations["pull_line_selectable"] = driver.execute_script(
        "return getComputedStyle(document.querySelector('code.pull')).userSelect") if sections else None
    driver.save_screenshot(screenshot)

    # Delete: the confirmation step, then the tags are gone.
    submit(driver.find_element(By.CSS_SELECTOR, "a.delete"))
    observations["confirm_title"] = driver.find_element(By.TAG_NAME, "h1").text
    submit(driver.find_element(By.CSS_SELECTOR, "button.danger"))
    observations["after_delete_url"] = driver.current_url
    observations["digest_sections_after_delete"] = len(driver.find_elements(By.CSS_SELECTOR, "section.digest"))

    # Image times: the creation time, else the recorded push, as each section shows it.
    driver.get(base + "/ui/r/alice/times")
    observations["times"] = {
        section.find_element(By.CSS_SELECTOR, "span.tag").text: section.find_element(By.CSS_SELECTOR, "span.time").text
        for section in driver.find_elements(By.CSS_SELECTOR, "section.digest")
    }
    log_out()
    observations["after_logout_url"] = driver.current_url

    # bob cannot open alice's repository by URL.
    log_in("bob", bob_password)
    driver.get(base + "/ui/r/alice/app")
    observations["bob_on_alice_title"] = driver.find_element(By.TAG_NAME, "h1").text
    observations["bob_on_alice_has_tags"] = len(driver.find_elements(By.CSS_SELECTOR, "span.tag"))

    # A forged session cookie goes back to the login page.
    driver.delete_all_cookies()
    driver.get(base + "/ui/login")
    driver.add_cookie({"name": "portcullis_ui", "value": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.", "path": "/ui"})
    driver.get(base + "/ui/")
    observations["forged_cookie_url"] = driver.current_url
finally:
    driver.quit()

print(json.dumps(observations))
