#pragma once

#include "services/matching/domain/matching_domain.h"
#include "services/runtime/eventsourcing/testing/domain_test_log.h"

namespace helpline::matching::testing {

using MatchingTestLog = es::testing::DomainTestLog<MatchingDomain>;

}  // namespace helpline::matching::testing
