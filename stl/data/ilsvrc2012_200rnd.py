"""The 200 ILSVRC-2012 classes drawn at random by the paper ("200rnd";
ILSVRC2012_200rnd_* in the authors' figures), in the authors' order.

Carried from the authors' public figure scripts (lorisbaz/self-taught_localization)
via stl/resources/reference/paper_reference.json (``ilsvrc2012_200rnd_classes``);
tests/test_datasets.py checks the two agree.
"""

CLASSES_200RND = (
    "n01930112",  # nematode, nematode worm, roundworm
    "n03461385",  # grocery store, grocery, food market, market
    "n01688243",  # frilled lizard, Chlamydosaurus kingi
    "n02120505",  # grey fox, gray fox, Urocyon cinereoargenteus
    "n04067472",  # reel
    "n02119022",  # red fox, Vulpes vulpes
    "n03673027",  # liner, ocean liner
    "n03126707",  # crane
    "n03494278",  # harmonica, mouth organ, harp, mouth harp
    "n07749582",  # lemon
    "n01641577",  # bullfrog, Rana catesbeiana
    "n07747607",  # orange
    "n02802426",  # basketball
    "n03930630",  # pickup, pickup truck
    "n02107142",  # Doberman, Doberman pinscher
    "n03724870",  # mask
    "n01692333",  # Gila monster, Heloderma suspectum
    "n02115641",  # dingo, warrigal, warragal, Canis dingo
    "n04562935",  # water tower
    "n02111500",  # Great Pyrenees
    "n02672831",  # accordion, piano accordion, squeeze box
    "n02110627",  # affenpinscher, monkey pinscher, monkey dog
    "n02113023",  # Pembroke, Pembroke Welsh corgi
    "n02256656",  # cicada, cicala
    "n04579145",  # whiskey jug
    "n03710193",  # mailbox, letter box
    "n02484975",  # guenon, guenon monkey
    "n02087394",  # Rhodesian ridgeback
    "n04409515",  # tennis ball
    "n02093859",  # Kerry blue terrier
    "n02111129",  # Leonberg
    "n04141975",  # scale, weighing machine
    "n03372029",  # flute, transverse flute
    "n03133878",  # Crock Pot
    "n03733805",  # measuring cup
    "n01798484",  # prairie chicken, prairie grouse, prairie fowl
    "n04560804",  # water jug
    "n02950826",  # cannon
    "n03935335",  # piggy bank, penny bank
    "n04141076",  # sax, saxophone
    "n02483362",  # gibbon, Hylobates lar
    "n03825788",  # nipple
    "n04501370",  # turnstile
    "n03785016",  # moped
    "n02906734",  # broom
    "n01828970",  # bee eater
    "n07720875",  # bell pepper
    "n03134739",  # croquet ball
    "n02277742",  # ringlet, ringlet butterfly
    "n01443537",  # goldfish, Carassius auratus
    "n03290653",  # entertainment center
    "n01773549",  # barn spider, Araneus cavaticus
    "n02091032",  # Italian greyhound
    "n03259280",  # Dutch oven
    "n03085013",  # computer keyboard, keypad
    "n01990800",  # isopod
    "n02437312",  # Arabian camel, dromedary, Camelus dromedarius
    "n04355338",  # sundial
    "n03804744",  # nail
    "n03874293",  # paddlewheel, paddle wheel
    "n02815834",  # beaker
    "n02108089",  # boxer
    "n02396427",  # wild boar, boar, Sus scrofa
    "n01616318",  # vulture
    "n02114367",  # timber wolf, grey wolf, gray wolf, Canis lupus
    "n04371430",  # swimming trunks, bathing trunks
    "n02168699",  # long-horned beetle, longicorn, longicorn beetle
    "n10565667",  # scuba diver
    "n04485082",  # tripod
    "n03337140",  # file, file cabinet, filing cabinet
    "n04399382",  # teddy, teddy bear
    "n03976657",  # pole
    "n03792782",  # mountain bike, all-terrain bike, off-roader
    "n04311174",  # steel drum
    "n03787032",  # mortarboard
    "n04325704",  # stole
    "n02177972",  # weevil
    "n04335435",  # streetcar, tram, tramcar, trolley, trolley car
    "n03832673",  # notebook, notebook computer
    "n02116738",  # African hunting dog, hyena dog, Cape hunting dog, Lycaon pictus
    "n02749479",  # assault rifle, assault gun
    "n02095314",  # wire-haired fox terrier
    "n02099712",  # Labrador retriever
    "n03814906",  # necklace
    "n03445777",  # golf ball
    "n06874185",  # traffic light, traffic signal, stoplight
    "n03908714",  # pencil sharpener
    "n03983396",  # pop bottle, soda bottle
    "n04467665",  # trailer truck, tractor trailer, trucking rig, rig, articulated lorry,
    "n02128385",  # leopard, Panthera pardus
    "n04111531",  # rotisserie
    "n04254777",  # sock
    "n02233338",  # cockroach, roach
    "n04209239",  # shower curtain
    "n07697537",  # hotdog, hot dog, red hot
    "n04311004",  # steel arch bridge
    "n02777292",  # balance beam, beam
    "n03355925",  # flagpole, flagstaff
    "n02110958",  # pug, pug-dog
    "n01530575",  # brambling, Fringilla montifringilla
    "n02107908",  # Appenzeller
    "n04200800",  # shoe shop, shoe-shop, shoe store
    "n04154565",  # screwdriver
    "n04023962",  # punching bag, punch bag, punching ball, punchball
    "n01514668",  # cock
    "n03180011",  # desktop computer
    "n03131574",  # crib, cot
    "n03124043",  # cowboy boot
    "n03902125",  # pay-phone, pay-station
    "n12768682",  # buckeye, horse chestnut, conker
    "n03775546",  # mixing bowl
    "n07714571",  # head cabbage
    "n03594734",  # jean, blue jean, denim
    "n02480495",  # orangutan, orang, orangutang, Pongo pygmaeus
    "n02099267",  # flat-coated retriever
    "n03967562",  # plow, plough
    "n03866082",  # overskirt
    "n03379051",  # football helmet
    "n03417042",  # garbage truck, dustcart
    "n02104365",  # schipperke
    "n07730033",  # cardoon
    "n01729977",  # green snake, grass snake
    "n01698640",  # American alligator, Alligator mississipiensis
    "n04252225",  # snowplow, snowplough
    "n03476991",  # hair spray
    "n03796401",  # moving van
    "n01514859",  # hen
    "n03729826",  # matchstick
    "n03201208",  # dining table, board
    "n01614925",  # bald eagle, American eagle, Haliaeetus leucocephalus
    "n07711569",  # mashed potato
    "n02356798",  # fox squirrel, eastern fox squirrel, Sciurus niger
    "n07684084",  # French loaf
    "n01882714",  # koala, koala bear, kangaroo bear, native bear, Phascolarctos cinereus
    "n04153751",  # screw
    "n04049303",  # rain barrel
    "n07718747",  # artichoke, globe artichoke
    "n04004767",  # printer
    "n04591157",  # Windsor tie
    "n02115913",  # dhole, Cuon alpinus
    "n04447861",  # toilet seat
    "n03781244",  # monastery
    "n01693334",  # green lizard, Lacerta viridis
    "n07745940",  # strawberry
    "n07753592",  # banana
    "n01537544",  # indigo bunting, indigo finch, indigo bird, Passerina cyanea
    "n04398044",  # teapot
    "n04589890",  # window screen
    "n02607072",  # anemone fish
    "n04037443",  # racer, race car, racing car
    "n02783161",  # ballpoint, ballpoint pen, ballpen, Biro
    "n02093256",  # Staffordshire bullterrier, Staffordshire bull terrier
    "n02412080",  # ram, tup
    "n12267677",  # acorn
    "n02909870",  # bucket, pail
    "n02165456",  # ladybug, ladybeetle, lady beetle, ladybird, ladybird beetle
    "n02487347",  # macaque
    "n02108915",  # French bulldog
    "n02504013",  # Indian elephant, Elephas maximus
    "n02106382",  # Bouvier des Flandres, Bouviers des Flandres
    "n03220513",  # dome
    "n02087046",  # toy terrier
    "n03065424",  # coil, spiral, volute, whorl, helix
    "n02099601",  # golden retriever
    "n02127052",  # lynx, catamount
    "n04592741",  # wing
    "n03476684",  # hair slide
    "n01883070",  # wombat
    "n02102973",  # Irish water spaniel
    "n02226429",  # grasshopper, hopper
    "n03347037",  # fire screen, fireguard
    "n03887697",  # paper towel
    "n04428191",  # thresher, thrasher, threshing machine
    "n02276258",  # admiral
    "n03733281",  # maze, labyrinth
    "n03424325",  # gasmask, respirator, gas helmet
    "n02948072",  # candle, taper, wax light
    "n02992211",  # cello, violoncello
    "n03400231",  # frying pan, frypan, skillet
    "n04296562",  # stage
    "n02490219",  # marmoset
    "n03888257",  # parachute, chute
    "n02965783",  # car mirror
    "n03998194",  # prayer rug, prayer mat
    "n03803284",  # muzzle
    "n02206856",  # bee
    "n03977966",  # police van, police wagon, paddy wagon, patrol wagon, wagon, black Mari
    "n02086240",  # Shih-Tzu
    "n04040759",  # radiator
    "n03670208",  # limousine, limo
    "n02280649",  # cabbage butterfly
    "n02441942",  # weasel
    "n03761084",  # microwave, microwave oven
    "n03908618",  # pencil box, pencil case
    "n02510455",  # giant panda, panda, panda bear, coon bear, Ailuropoda melanoleuca
    "n02794156",  # barometer
    "n02841315",  # binoculars, field glasses, opera glasses
    "n02865351",  # bolo tie, bolo, bola tie, bola
    "n02088238",  # basset, basset hound
    "n02927161",  # butcher shop, meat market
)
