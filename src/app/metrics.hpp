// Metrics in the Prometheus text exposition format 0.0.4: a registry of metric families, each
// a name, a type, a help text and a function that reads its samples when /metrics is scraped.
// Nothing is computed between scrapes: the data path keeps its own counters (per event loop,
// per reason, ...) and the families read them. Adding a metric is one add() call in
// register_server_metrics (app/server_metrics.cpp).
// Thread-safety: add() before the first render(); render() from one thread at a time.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mles::app {

enum class metric_type { counter, gauge };

// Hands a family's samples to the registry during a scrape.
class metric_writer {
 public:
  using label = std::pair<std::string_view, std::string_view>;
  void sample(double value) { sample({}, value); }
  void sample(std::initializer_list<label> labels, double value);

 private:
  friend class metrics_registry;
  explicit metric_writer(std::string& out, std::string_view name) : out_(out), name_(name) {}
  std::string& out_;
  std::string_view name_;
};

class metrics_registry {
 public:
  using collect_fn = std::function<void(metric_writer&)>;

  // name: [a-zA-Z_:][a-zA-Z0-9_:]*, unique; a counter's name ends in "_total". Throws
  // std::logic_error otherwise (a programming error, caught by the tests that scrape).
  void add(std::string name, metric_type type, std::string help, collect_fn collect);
  // One sample without labels.
  void add(std::string name, metric_type type, std::string help, std::function<double()> value);

  // Every family: # HELP, # TYPE, then its samples (a family without samples keeps its HELP
  // and TYPE lines).
  std::string render() const;

  std::size_t size() const noexcept { return families_.size(); }

 private:
  struct family {
    std::string name;
    metric_type type;
    std::string help;
    collect_fn collect;
  };
  std::vector<family> families_;
};

// The Content-Type of render()'s output.
inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace mles::app
