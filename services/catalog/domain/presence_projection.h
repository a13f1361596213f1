#pragma once

#include "helpline/matching/v1/events.pb.h"
#include "services/catalog/domain/read_model.h"
#include "services/runtime/eventsourcing/projection.h"

namespace helpline::catalog {

// Matching's presence events into the read model's "available now": an
// expert online with status AVAILABLE is available; busy, away or offline
// is not.
class PresenceProjection : public es::TypedProjection<matching::v1::MatchingEvent> {
 public:
  explicit PresenceProjection(CatalogReadModel& read_model) : read_model_(read_model) {}

  void Apply(const matching::v1::MatchingEvent& event) override {
    switch (event.body_case()) {
      case matching::v1::MatchingEvent::kExpertWentOnline:
        read_model_.SetOnline(event.expert_went_online().expert_id(),
                              event.expert_went_online().status() ==
                                  matching::v1::PRESENCE_STATUS_AVAILABLE);
        break;
      case matching::v1::MatchingEvent::kExpertStatusChanged:
        read_model_.SetOnline(event.expert_status_changed().expert_id(),
                              event.expert_status_changed().status() ==
                                  matching::v1::PRESENCE_STATUS_AVAILABLE);
        break;
      case matching::v1::MatchingEvent::kExpertWentOffline:
        read_model_.SetOnline(event.expert_went_offline().expert_id(), false);
        break;
      default:
        break;
    }
  }

 private:
  CatalogReadModel& read_model_;
};

}  // namespace helpline::catalog
