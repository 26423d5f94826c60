package zkx

// maxPacket is the largest answer a Session reads from ZooKeeper.
// go-zookeeper refuses a larger one by closing the connection, and
// ZooKeeper has no paged getChildren: the listing of a group's members is
// one answer, about (4 + ID length) bytes per member, 20 MiB for
// 1,000,000 members with 16-character IDs, 132 MiB for 1,000,000 IDs of
// the longest (128). At 4 MiB (the limit before issue 15) a gateway could
// not load a group of more than about 200,000 such members at all. The
// buffer grows to an answer's size only when one needs it.
const maxPacket = 256 << 20
