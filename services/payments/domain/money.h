#pragma once

#include <cstdint>

// Commission arithmetic (docs/architecture.md §6): integer minor units, basis points.
namespace helpline::payments {

struct Split {
  int64_t fee = 0;           // the platform's commission
  int64_t expert_share = 0;  // amount - fee: the two always sum to the amount
};

// fee = round_half_up(amount × bps / 10000), for 0 <= amount and
// 0 <= bps <= 10000; computed in 128 bits, so any int64 amount is exact.
inline Split SplitAmount(int64_t amount, int32_t bps) {
  __int128 scaled = static_cast<__int128>(amount) * bps;
  int64_t fee = static_cast<int64_t>((scaled + 5000) / 10000);
  return {fee, amount - fee};
}

}  // namespace helpline::payments
