#pragma once

#include "helpline/sessions/v1/events.pb.h"
#include "services/catalog/domain/read_model.h"
#include "services/runtime/eventsourcing/projection.h"

namespace helpline::catalog {

// Sessions' reviews into the experts' ratings.
class ReviewProjection : public es::TypedProjection<sessions::v1::SessionsEvent> {
 public:
  explicit ReviewProjection(CatalogReadModel& read_model) : read_model_(read_model) {}

  void Apply(const sessions::v1::SessionsEvent& event) override {
    if (event.has_review_submitted()) {
      read_model_.RecordReview(event.review_submitted().expert_id(),
                               event.review_submitted().stars());
    }
  }

 private:
  CatalogReadModel& read_model_;
};

}  // namespace helpline::catalog
