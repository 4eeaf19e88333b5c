// facerec gallery list|remove|rename|import|export|duplicates|copy
#include <iostream>

#include <nlohmann/json.hpp>

#include "app.h"
#include "facerec/duplicates.h"

namespace facerec::cli {
namespace {

struct GalleryArgs {
  std::string db = "gallery.db";
  bool json = false;
  std::string name, new_name;
  std::string embeddings_txt, label_map;
  std::string embedder;  // import: which embedder made the legacy vectors
  std::string manifest;
  std::optional<float> threshold;  // duplicates: same-person cosine (default: the manifest's)
  std::string from, to;            // copy
};

Result<std::unique_ptr<Gallery>> open_existing(const std::string& db) { return Gallery::open_existing(db); }
// list, export and duplicates only read: they work on read-only storage.
Result<std::unique_ptr<Gallery>> open_read_only(const std::string& db) { return Gallery::open_read_only(db); }

int fail(const char* what, const Status& s) {
  std::cerr << "facerec gallery " << what << ": " << s.to_string() << "\n";
  return kExitError;
}

// facerec gallery duplicates: every flagged pair (see facerec/duplicates.h).
int list_duplicates(const GalleryArgs& a) {
  auto g = open_read_only(a.db);
  if (!g.ok()) return fail("duplicates", g.status());
  float threshold = 0.f;
  std::string why;
  if (a.threshold) {
    threshold = *a.threshold;
    why = "--threshold";
  } else {
    auto man = a.manifest.empty() ? Manifest::load_default() : Manifest::load(a.manifest);  // imported models too
    if (!man.ok()) return fail("duplicates", man.status());
    const ModelSpec* m = man->find((*g)->embedder().model_id);
    if (!m || m->match_threshold <= 0.f)
      return fail("duplicates", Status(ErrorCode::kInvalidArgument, "the manifest has no measured threshold for the gallery's embedder '" +
                                                                    (*g)->embedder().model_id + "'; pass --threshold"));
    threshold = m->match_threshold;
    why = "the manifest's threshold for " + m->id;
  }
  auto f = DuplicateFinder::from_gallery(**g, threshold);
  if (!f.ok()) return fail("duplicates", f.status());
  const auto pairs = f->all_pairs();
  auto side = [](const DuplicateMatch& m) {
    return nlohmann::json({{"identity", m.person}, {"template", m.template_id}, {"source", m.source}});
  };
  if (!a.json)
    std::printf("%s: %zu duplicate pair(s) among %zu templates (same photo, or same face at cosine >= %.3f, %s)\n", redact_uri(a.db).c_str(),
                pairs.size(), f->size(), threshold, why.c_str());
  for (const auto& p : pairs) {
    if (a.json) {
      std::cout << nlohmann::json({{"a", side(p.a)}, {"b", side(p.b)}, {"similarity", p.similarity}, {"why", to_string(p.kind)}}).dump()
                << "\n";
    } else {
      std::printf("  %s #%lld (%s)  <->  %s #%lld (%s): %s, similarity %.3f\n", printable(p.a.person).c_str(),
                  static_cast<long long>(p.a.template_id), printable(p.a.source).c_str(), printable(p.b.person).c_str(),
                  static_cast<long long>(p.b.template_id), printable(p.b.source).c_str(), to_string(p.kind), p.similarity);
    }
  }
  return kExitOk;
}

}  // namespace

void register_gallery(CLI::App& app, std::function<void(int)> set_rc) {
  static GalleryArgs a;
  auto* cmd = app.add_subcommand("gallery", "inspect and edit the gallery of enrolled people");
  cmd->require_subcommand(1);

  auto* list = cmd->add_subcommand("list", "people and their template counts");
  list->add_flag("--json", a.json, "one JSON object per person");
  list->callback([set_rc] {
    auto g = open_read_only(a.db);
    if (!g.ok()) return set_rc(fail("list", g.status()));
    auto people = (*g)->list_people();
    if (!people.ok()) return set_rc(fail("list", people.status()));
    const auto& e = (*g)->embedder();
    if (!a.json)
      std::cout << redact_uri(a.db) << ": " << people->size() << " people, embedder " << e.model_id << " (" << e.dim << "-D)\n";
    for (const auto& p : *people) {
      if (a.json) std::cout << nlohmann::json({{"identity", p.name}, {"templates", p.templates}}).dump() << "\n";
      else std::cout << "  " << printable(p.name) << "  (" << p.templates << " templates)\n";
    }
    set_rc(kExitOk);
  });

  auto* remove = cmd->add_subcommand("remove", "remove a person and all their templates");
  remove->add_option("name", a.name, "identity")->required();
  remove->callback([set_rc] {
    auto g = open_existing(a.db);
    if (!g.ok()) return set_rc(fail("remove", g.status()));
    if (Status s = (*g)->remove_person(a.name); !s.ok()) return set_rc(fail("remove", s));
    std::cout << "removed " << printable(a.name) << "\n";
    set_rc(kExitOk);
  });

  auto* rename = cmd->add_subcommand("rename", "rename a person");
  rename->add_option("old", a.name, "current identity")->required();
  rename->add_option("new", a.new_name, "new identity")->required();
  rename->callback([set_rc] {
    auto g = open_existing(a.db);
    if (!g.ok()) return set_rc(fail("rename", g.status()));
    if (Status s = (*g)->rename_person(a.name, a.new_name); !s.ok()) return set_rc(fail("rename", s));
    std::cout << "renamed " << printable(a.name) << " to " << printable(a.new_name) << "\n";
    set_rc(kExitOk);
  });

  auto* imp = cmd->add_subcommand("import", "import the original design's face_embdding.txt + label_map.json");
  imp->add_option("embeddings", a.embeddings_txt, "face_embdding.txt")->required();
  imp->add_option("label_map", a.label_map,
                  "label_map.json (default: the one beside face_embdding.txt; without one, people are named label_<n>)");
  imp->add_option("--embedder", a.embedder, "manifest id of the embedder that produced the vectors")->required();
  imp->add_option("--manifest", a.manifest, "model manifest");
  imp->callback([set_rc] {
    auto man = a.manifest.empty() ? Manifest::load_default() : Manifest::load(a.manifest);  // imported models too
    if (!man.ok()) return set_rc(fail("import", man.status()));
    const ModelSpec* m = man->find(a.embedder);
    if (!m || m->task != ModelTask::kEmbedder)
      return set_rc(fail("import", Status(ErrorCode::kNotFound, "no embedder '" + a.embedder + "' in the manifest")));
    int dim = m->outputs.empty() ? 0 : static_cast<int>(m->outputs[0].dims.back());
    if (dim <= 0) return set_rc(fail("import", Status(ErrorCode::kInvalidArgument, "the manifest entry of '" +
                                                      a.embedder + "' does not state its output dimension")));
    auto r = Gallery::import_legacy_into(a.db, embedder_info_for(*m, dim), a.embeddings_txt, a.label_map);
    if (!r.ok()) return set_rc(fail("import", r.status()));
    for (const auto& note : r->notes) std::cerr << "note: " << printable(note) << "\n";
    std::cout << "imported " << r->added << " templates into " << redact_uri(a.db) << " (" << r->layout << " layout; "
              << r->already_present << " already present)\n";
    set_rc(kExitOk);
  });

  auto* exp = cmd->add_subcommand("export", "export to the original design's face_embdding.txt + label_map.json");
  exp->add_option("embeddings", a.embeddings_txt, "face_embdding.txt to write")->required();
  exp->add_option("label_map", a.label_map, "label_map.json to write")->required();
  auto* dup = cmd->add_subcommand("duplicates", "pairs of templates of two different people that are the same photo or the same face");
  dup->add_flag("--json", a.json, "one JSON object per pair");
  dup->add_option("--threshold", a.threshold, "same-person cosine (default: the gallery embedder's threshold in the manifest)")
      ->check(CLI::Range(-1.0, 1.0));
  dup->add_option("--manifest", a.manifest, "model manifest");
  dup->callback([set_rc] { set_rc(list_duplicates(a)); });

  auto* copy = cmd->add_subcommand("copy", "copy a whole gallery between SQLite and PostgreSQL (either way), checking every count");
  copy->add_option("--from", a.from, "the gallery to read: a SQLite path or postgresql://user@host/db")->required();
  copy->add_option("--to", a.to, "the gallery to write (created when absent; must hold none of the people)")->required();
  copy->add_flag("--json", a.json, "the counts as one JSON object");
  copy->callback([set_rc] {
    auto r = copy_gallery(a.from, a.to);
    if (!r.ok()) return set_rc(fail("copy", r.status()));
    if (a.json)
      std::cout << nlohmann::json({{"from", redact_uri(a.from)}, {"to", redact_uri(a.to)}, {"people", r->people},
                                   {"templates", r->templates}, {"embedder", r->embedder.model_id}})
                       .dump()
                << "\n";
    else
      std::cout << "copied " << r->people << " people and " << r->templates << " templates (embedder "
                << r->embedder.model_id << ") from " << redact_uri(a.from) << " to " << redact_uri(a.to)
                << "; every count and vector checked\n";
    set_rc(kExitOk);
  });

  for (auto* sub : {list, remove, rename, imp, exp, dup})
    sub->add_option("--db", a.db, "gallery: a SQLite file (default gallery.db) or postgresql://user@host/dbname");
  exp->callback([set_rc] {
    auto g = open_read_only(a.db);
    if (!g.ok()) return set_rc(fail("export", g.status()));
    if (Status s = (*g)->export_legacy(a.embeddings_txt, a.label_map); !s.ok()) return set_rc(fail("export", s));
    std::cout << "exported to " << a.embeddings_txt << " and " << a.label_map << "\n";
    set_rc(kExitOk);
  });
}

}  // namespace facerec::cli
