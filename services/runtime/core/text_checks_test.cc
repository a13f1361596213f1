#include "services/runtime/core/text_checks.h"

#include "gtest/gtest.h"
#include "services/runtime/core/language_tags.h"

namespace helpline::text {
namespace {

TEST(TextChecksTest, CountsCodePointsOfEveryScript) {
  EXPECT_EQ(Utf8Length("Ana"), 3);
  EXPECT_EQ(Utf8Length("Zoë Åström"), 10);
  EXPECT_EQ(Utf8Length("محمد"), 4);
  EXPECT_EQ(Utf8Length("田中"), 2);
  EXPECT_EQ(Utf8Length("🙂"), 1);
  // Joiners that real names and emoji need: ZWJ (woman technologist), ZWNJ (Persian).
  EXPECT_EQ(Utf8Length("\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB"), 3);
  EXPECT_EQ(Utf8Length("\xD9\x85\xE2\x80\x8C\xD9\x89"), 3);
  // Left-to-right and right-to-left marks, for mixed-direction text.
  EXPECT_EQ(Utf8Length("Ana \xE2\x80\x8F"), 5);
}

TEST(TextChecksTest, RefusesTextThatReadsDifferentlyFromHowItIsStored) {
  for (const char* disguised : {
           "admin\xE2\x80\xAEnimda",    // right-to-left override
           "Ana\xE2\x80\xAA",           // left-to-right embedding
           "Ana\xE2\x81\xA6x\xE2\x81\xA9",  // isolates
           "Ana\xE2\x80\x8B",           // zero-width space
           "Ana\xE2\x81\xA0",           // word joiner
           "Ana\xE2\x80\xA8" "Bob",      // line separator
           "\xEF\xBB\xBF" "Ana",        // byte-order mark
           "Ana\xC2\x85",               // C1 control (next line)
       }) {
    EXPECT_EQ(Utf8Length(disguised), -1) << disguised;
    errors::Validator validator;
    CheckText(disguised, 1, 64, "display_name", validator);
    EXPECT_FALSE(validator.Finish().ok()) << disguised;
  }
}

// Paragraphs keep the zero-width spaces that Thai and Japanese text from the
// web carries; overrides stay out everywhere.
TEST(TextChecksTest, ParagraphsKeepZeroWidthSpacesButNotOverrides) {
  EXPECT_EQ(Utf8Length("\xE0\xB8\xAA\xE2\x80\x8B\xE0\xB8\xA1", /*multiline=*/true), 3);
  EXPECT_EQ(Utf8Length("a\xE2\x80\xAE" "b", /*multiline=*/true), -1);
}

// A name of spaces, fillers and joiners alone shows nothing: blank.
TEST(TextChecksTest, TextOfInvisibleCharactersAloneIsBlank) {
  for (const char* blank : {"   ", "\xC2\xA0\xC2\xA0", "\xE3\x85\xA4", "\xE2\xA0\x80",
                            "\xE2\x80\x8D\xE2\x80\x8C", "\xE2\x80\x8F", "\xE3\x80\x80"}) {
    EXPECT_FALSE(Visible(blank)) << blank;
    errors::Validator validator;
    CheckText(blank, 1, 64, "display_name", validator);
    EXPECT_FALSE(validator.Finish().ok()) << blank;
  }
  EXPECT_TRUE(Visible(" Ana "));
  EXPECT_TRUE(Visible("\xF0\x9F\x99\x82"));
}

TEST(TextChecksTest, RefusesMalformedUtf8AndControls) {
  EXPECT_EQ(Utf8Length("\xC0\xAF"), -1) << "overlong";
  EXPECT_EQ(Utf8Length("\xE0\x80\xAF"), -1) << "overlong";
  EXPECT_EQ(Utf8Length("\xED\xA0\x80"), -1) << "surrogate";
  EXPECT_EQ(Utf8Length("\xF4\x90\x80\x80"), -1) << "past U+10FFFF";
  EXPECT_EQ(Utf8Length("\xE2\x82"), -1) << "cut";
  EXPECT_EQ(Utf8Length("a\nb"), -1);
  EXPECT_EQ(Utf8Length("a\nb", /*multiline=*/true), 3);
}

TEST(LanguageTags, CanonicalCase) {
  EXPECT_EQ(NormaliseLanguageTag("en-gb"), "en-GB");
  EXPECT_EQ(NormaliseLanguageTag("ZH-hant-tw"), "zh-Hant-TW");
  EXPECT_EQ(NormaliseLanguageTag("gsw"), "gsw");
  EXPECT_EQ(NormaliseLanguageTag("es-419"), "es-419");
  EXPECT_EQ(NormaliseLanguageTag("de-CH-1901"), "de-CH-1901");
  EXPECT_EQ(NormaliseLanguageTag("e"), std::nullopt);
  EXPECT_EQ(NormaliseLanguageTag("en-"), std::nullopt);
  EXPECT_EQ(NormaliseLanguageTag("en GB"), std::nullopt);
}

}  // namespace
}  // namespace helpline::text
