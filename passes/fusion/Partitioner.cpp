//===- Partitioner.cpp - fusion groups on the dataflow graph ---------------===//
#include "kiln/Passes/Partitioner.h"

#include "kiln/IR/KilnOps.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/raw_ostream.h"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/graphviz.hpp>
#include <boost/graph/subgraph.hpp>
#include <boost/graph/topological_sort.hpp>

#include <algorithm>
#include <map>

using namespace mlir;

namespace kiln {

const char *fusionKindName(FusionKind kind) {
  switch (kind) {
  case FusionKind::LinearGelu:
    return "kiln-fuse-linear-gelu";
  case FusionKind::ResidualLayerNorm:
    return "kiln-fuse-residual-layer-norm";
  case FusionKind::Attention:
    return "kiln-fuse-attention";
  }
  return "?";
}

namespace {

template <typename OpTy> OpTy singleUseDef(Value v) {
  auto op = v.getDefiningOp<OpTy>();
  return op && op->hasOneUse() ? op : OpTy();
}

/// Candidate groups by pattern, in block order.
std::vector<FusionGroup> candidates(func::FuncOp func, const std::vector<FusionKind> &kinds) {
  auto wants = [&](FusionKind k) { return std::find(kinds.begin(), kinds.end(), k) != kinds.end(); };
  std::vector<FusionGroup> out;
  for (Operation &op : func.getBody().front()) {
    if (auto g = dyn_cast<GeluOp>(op); g && wants(FusionKind::LinearGelu)) {
      auto linear = singleUseDef<LinearOp>(g.getInput());
      if (linear && !linear.getGeluEpilogue())
        out.push_back({FusionKind::LinearGelu, {linear, g}});
    } else if (auto ln = dyn_cast<LayerNormOp>(op); ln && wants(FusionKind::ResidualLayerNorm)) {
      if (auto add = ln.getInput().getDefiningOp<AddOp>())
        out.push_back({FusionKind::ResidualLayerNorm, {add, ln}});
    } else if (auto pv = dyn_cast<MatMulOp>(op); pv && !pv.getTransposeRhs() && wants(FusionKind::Attention)) {
      auto softmax = singleUseDef<SoftmaxOp>(pv.getLhs());
      auto mask = softmax ? singleUseDef<CausalMaskOp>(softmax.getInput()) : CausalMaskOp();
      auto scale = mask ? singleUseDef<ScaleOp>(mask.getScores()) : ScaleOp();
      auto qk = scale ? singleUseDef<MatMulOp>(scale.getInput()) : MatMulOp();
      if (qk && qk.getTransposeRhs())
        out.push_back({FusionKind::Attention, {qk, scale, mask, softmax, pv}});
    }
  }
  return out;
}

/// The ops of a function as vertices 0..n-1 and their def-use edges.
struct Dataflow {
  std::vector<Operation *> ops;
  llvm::DenseMap<Operation *, int> index;
  std::vector<std::pair<int, int>> edges;

  explicit Dataflow(func::FuncOp func) {
    for (Operation &op : func.getBody().front()) {
      index[&op] = int(ops.size());
      ops.push_back(&op);
    }
    for (Operation *op : ops)
      for (Value operand : op->getOperands())
        if (Operation *def = operand.getDefiningOp(); def && index.count(def))
          edges.push_back({index.at(def), index.at(op)});
  }
};

/// Whether contracting every group (vertices with equal `groupOf`) leaves a DAG.
bool quotientIsAcyclic(const Dataflow &df, const std::vector<int> &groupOf) {
  using Dag = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;
  Dag quotient(df.ops.size());
  for (auto [u, v] : df.edges)
    if (groupOf[size_t(u)] != groupOf[size_t(v)])
      boost::add_edge(size_t(groupOf[size_t(u)]), size_t(groupOf[size_t(v)]), quotient);
  std::vector<Dag::vertex_descriptor> order;
  try {
    boost::topological_sort(quotient, std::back_inserter(order));
  } catch (const boost::not_a_dag &) {
    return false;
  }
  return true;
}

} // namespace

std::vector<FusionGroup> partitionFusionGroups(func::FuncOp func, const std::vector<FusionKind> &kinds) {
  Dataflow df(func);
  std::vector<int> groupOf(df.ops.size());
  for (size_t i = 0; i < groupOf.size(); ++i)
    groupOf[i] = int(i);
  std::vector<FusionGroup> accepted;
  for (FusionGroup &g : candidates(func, kinds)) {
    std::vector<int> members;
    for (Operation *op : g.ops)
      members.push_back(df.index.at(op));
    // A member already in an accepted group: the groups would overlap.
    if (std::any_of(members.begin(), members.end(), [&](int m) { return groupOf[size_t(m)] != m; }))
      continue;
    std::vector<int> trial = groupOf;
    for (int m : members)
      trial[size_t(m)] = members.front();
    if (!quotientIsAcyclic(df, trial))
      continue;
    groupOf = std::move(trial);
    accepted.push_back(std::move(g));
  }
  return accepted;
}

void writeDataflowGraph(ModuleOp module, std::ostream &os) {
  using Attributes = std::map<std::string, std::string>;
  using Graph = boost::subgraph<boost::adjacency_list<
      boost::vecS, boost::vecS, boost::directedS, boost::property<boost::vertex_attribute_t, Attributes>,
      boost::property<boost::edge_index_t, int, boost::property<boost::edge_attribute_t, Attributes>>,
      boost::property<boost::graph_name_t, std::string,
                      boost::property<boost::graph_graph_attribute_t, Attributes,
                                      boost::property<boost::graph_vertex_attribute_t, Attributes,
                                                      boost::property<boost::graph_edge_attribute_t, Attributes>>>>>>;
  Graph root;
  boost::get_property(root, boost::graph_name) = "kiln";
  boost::get_property(root, boost::graph_vertex_attribute)["shape"] = "box";
  boost::get_property(root, boost::graph_vertex_attribute)["fontsize"] = "10";
  auto typeText = [](Type t) {
    std::string s;
    llvm::raw_string_ostream os(s);
    t.print(os);
    return s;
  };
  const std::vector<FusionKind> all = {FusionKind::LinearGelu, FusionKind::ResidualLayerNorm, FusionKind::Attention};
  int clusters = 0;
  for (auto func : module.getOps<func::FuncOp>()) {
    Graph &fg = root.create_subgraph();
    boost::get_property(fg, boost::graph_name) = "cluster_" + std::to_string(clusters++);
    boost::get_property(fg, boost::graph_graph_attribute)["label"] = "@" + func.getSymName().str();
    Dataflow df(func);
    std::vector<Graph::vertex_descriptor> vertex(df.ops.size());
    for (size_t i = 0; i < df.ops.size(); ++i) {
      Operation *op = df.ops[i];
      vertex[i] = boost::add_vertex(root);
      Attributes &a = boost::get(boost::vertex_attribute, root)[vertex[i]];
      std::string label = op->getName().getStringRef().str();
      if (auto w = dyn_cast<WeightOp>(op)) {
        label = "@" + w.getGlobal().str();
        a["color"] = "gray";
      }
      if (op->getNumResults() > 0)
        label += "\\n" + typeText(op->getResult(0).getType());
      a["label"] = label;
    }
    int e = int(boost::num_edges(root));
    for (auto [u, v] : df.edges) {
      auto [edge, added] = boost::add_edge(vertex[size_t(u)], vertex[size_t(v)], root);
      if (added)
        boost::put(boost::edge_index, root, edge, e++);
    }
    // Subgraphs take root (global) vertices and their edges among themselves.
    for (auto v : vertex)
      boost::add_vertex(v, fg);
    for (const FusionGroup &g : partitionFusionGroups(func, all)) {
      Graph &gg = fg.create_subgraph();
      boost::get_property(gg, boost::graph_name) = "cluster_" + std::to_string(clusters++);
      boost::get_property(gg, boost::graph_graph_attribute)["label"] = fusionKindName(g.kind);
      boost::get_property(gg, boost::graph_graph_attribute)["style"] = "filled";
      boost::get_property(gg, boost::graph_graph_attribute)["fillcolor"] = "lightyellow";
      for (Operation *op : g.ops)
        boost::add_vertex(vertex[size_t(df.index.at(op))], gg);
    }
  }
  boost::write_graphviz(os, root);
}

} // namespace kiln
