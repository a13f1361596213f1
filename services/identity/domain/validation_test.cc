#include "services/identity/domain/validation.h"
#include "services/runtime/core/text_checks.h"

#include "gtest/gtest.h"

namespace helpline::identity {
namespace {

TEST(ValidationTest, EmailsAreNormalisedOrRefused) {
  EXPECT_EQ(NormaliseEmail("  Ada.Lovelace@Example.ORG "), "ada.lovelace@example.org");
  for (const char* bad : {"", "no-at-sign", "@example.org", "a@b", "a@@b.org", "a b@c.org",
                          "a@.org", "a@b.", "a@b..org", "a\n@b.org"}) {
    EXPECT_EQ(NormaliseEmail(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(NormaliseEmail(std::string(250, 'a') + "@b.org"), std::nullopt);
}

TEST(ValidationTest, PasswordPolicy) {
  auto violations = [](std::string_view password) {
    errors::Validator validator;
    CheckPassword(password, "ada@example.org", "password", validator);
    return errors::FieldViolations(validator.Finish()).size();
  };
  EXPECT_EQ(violations("correct horse battery"), 0u);
  EXPECT_EQ(violations("ünïcödé-pässwörd"), 0u);
  EXPECT_EQ(violations("short"), 1u);
  EXPECT_EQ(violations(std::string(129, 'x')), 1u);
  EXPECT_EQ(violations("ADA@example.org"), 1u) << "not the email";
  EXPECT_EQ(violations(std::string("tab\there-and-more")), 1u);
  EXPECT_EQ(violations(std::string("bad \xff\xfe utf8 here")), 1u);
}

TEST(ValidationTest, DisplayNamesAndRequestIds) {
  errors::Validator validator;
  CheckDisplayName("Zoë Ng", "display_name", validator);
  text::CheckRequestId("req-42", "request_id", validator);
  EXPECT_TRUE(validator.ok());
  CheckDisplayName("   ", "display_name", validator);
  CheckDisplayName(std::string(81, 'z'), "display_name", validator);
  text::CheckRequestId("", "request_id", validator);
  text::CheckRequestId("has space", "request_id", validator);
  EXPECT_EQ(errors::FieldViolations(validator.Finish()).size(), 4u);
}

}  // namespace
}  // namespace helpline::identity
