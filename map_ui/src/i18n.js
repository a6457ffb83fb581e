// SPDX-License-Identifier: AGPL-3.0-or-later
// Labels come from the catalogue the view rendered (map_ui/catalogue.py), in the page's
// language; dates and numbers go through Intl so both read naturally in vi and en.
import { config } from "./config.js";

const LOCALE = config.lang === "en" ? "en-GB" : "vi-VN";
const strings = config.strings || {};
const dateFormat = new Intl.DateTimeFormat(LOCALE, {dateStyle: "short", timeStyle: "medium"});
const timeFormat = new Intl.DateTimeFormat(LOCALE, {hour: "2-digit", minute: "2-digit"});
const numberFormat = new Intl.NumberFormat(LOCALE, {maximumFractionDigits: 1});

/** The label for `key`, or the key itself so a missing entry is visible, never blank. */
export function t(key) {
  return strings[key] ?? key;
}

/** A layer's or area's title in the page language (Vietnamese when English is missing). */
export function localName(vi, en) {
  return config.lang === "en" && en ? en : vi || en || "";
}

export const formatDate = (value) => (value ? dateFormat.format(new Date(value)) : "—");
export const formatTime = (value) => (value ? timeFormat.format(new Date(value)) : "—");
export const formatNumber = (value) => (typeof value === "number" ? numberFormat.format(value) : String(value ?? "—"));
export const lang = config.lang;
